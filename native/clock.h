// CLOCK_MONOTONIC in nanoseconds: the clock of probe deadlines and of WireGuard's session ages
// (a wall clock step must not expire a session or a probe).
#pragma once
#include <time.h>

#include <cstdint>

namespace flatnet {

inline int64_t monotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace flatnet
