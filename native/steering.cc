// The multi-queue TUN's steering program (eBPF, written out instruction by
// instruction: flatnet carries no BPF toolchain or library).
#include "steering.h"

#include <linux/bpf.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#ifndef TUNSETSTEERINGEBPF
#define TUNSETSTEERINGEBPF _IOR('T', 224, int)  // Linux 4.16
#endif

namespace flatnet {

namespace {

constexpr uint8_t R0 = BPF_REG_0, R1 = BPF_REG_1, R2 = BPF_REG_2, R3 = BPF_REG_3, R4 = BPF_REG_4,
                  R6 = BPF_REG_6, R7 = BPF_REG_7, R8 = BPF_REG_8, R9 = BPF_REG_9, R10 = BPF_REG_10;
constexpr int32_t kMoved = 1 << 30;        // in a map value: the flow went to the next queue
constexpr int32_t kSuperPacket = 1500;     // longer than any single packet on the TUN
constexpr int32_t kWindowNs = 1'000'000;   // a flow's packet rate is counted per millisecond
constexpr int32_t kBurst = 256;            // packets in one window that make a flow bulk (256k/s)

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

int bpf(int cmd, bpf_attr* attr) { return int(syscall(SYS_bpf, cmd, attr, sizeof *attr)); }

// The queue of the CPU cpu: its index in queueCpus, or cpu % size for a CPU not in
// it (a pod's exclusive CPU outside the daemon's cpuset). The socket side's classic
// BPF (udp.cc steerByCpu) computes the same with compares.
int queueOfCpu(const std::vector<int>& queueCpus, int cpu) {
  auto at = std::find(queueCpus.begin(), queueCpus.end(), cpu);
  return at != queueCpus.end() ? int(at - queueCpus.begin()) : cpu % int(queueCpus.size());
}

// An array map from every possible CPU number to its queue. Returns the map's fd or
// -errno.
int queueMap(const std::vector<int>& queueCpus) {
  int cpus = std::max(get_nprocs_conf(), *std::max_element(queueCpus.begin(), queueCpus.end()) + 1);
  bpf_attr map{};
  map.map_type = BPF_MAP_TYPE_ARRAY;
  map.key_size = 4;
  map.value_size = 4;
  map.max_entries = uint32_t(cpus);
  int fd = bpf(BPF_MAP_CREATE, &map);
  if (fd < 0) return -errno;
  for (uint32_t cpu = 0; cpu < uint32_t(cpus); cpu++) {
    uint32_t queue = uint32_t(queueOfCpu(queueCpus, int(cpu)));
    bpf_attr set{};
    set.map_fd = uint32_t(fd);
    set.key = reinterpret_cast<uintptr_t>(&cpu);
    set.value = reinterpret_cast<uintptr_t>(&queue);
    if (bpf(BPF_MAP_UPDATE_ELEM, &set) < 0) {
      int err = errno;
      close(fd);
      return -err;
    }
  }
  return fd;
}

}  // namespace

// The steering program, for a multi-queue TUN (tun takes its result modulo the
// number of queues). A flow's first packet picks the queue of the CPU it is sent on
// (from an array map: queue q is the worker pinned to queueCpus[q], which is not CPU
// q in a cpuset with gaps), and the flow keeps that queue (an LRU map from a hash of
// its addresses, protocol and ports): the worker pinned to that CPU reads it, woken
// without an inter-processor interrupt (what a round trip costs most in a VM), and a
// flow's packets are never split over two workers. Without the map (queue = this CPU
// per packet) a TCP sender's data left from its own CPU and, ACK-clocked, from the
// CPU its ACKs came in on: the two workers reordered the flow (100k retransmits in
// 4 s). A flow that shows it is bulk (a GSO super-packet, or more than kBurst packets
// in a millisecond) moves, once, to the next queue (the next CPU's), where its
// per-packet work (segmenting, checksums, copies) runs beside the sending
// application instead of competing with it: single-stream TCP 6.2 -> 11-12 Gbit/s,
// 64-byte UDP 84 -> 220 kpps here, no TCP reordering seen (one move per flow, early
// in its life). Request/response flows (a sockperf ping-pong: ~40 packets a
// millisecond) never move.
int loadCpuSteering(const std::vector<int>& queueCpus, int* progFd) {
  int queuesFd = queueMap(queueCpus);
  if (queuesFd < 0) return -queuesFd;
  bpf_attr map{};
  map.map_type = BPF_MAP_TYPE_LRU_HASH;
  map.key_size = 8;
  map.value_size = 16;
  map.max_entries = 16384;
  int mapFd = bpf(BPF_MAP_CREATE, &map);
  if (mapFd < 0) {
    int err = errno;
    close(queuesFd);
    return err;
  }
  // The key: the IP addresses, protocol and the first 4 bytes after the IP header
  // (ports), folded into 64 bits. LD_ABS/LD_IND read the packet from r6 = ctx; an
  // out-of-range read ends the program with 0 (queue 0), which stays correct.
  const uint8_t ldB = BPF_LD | BPF_ABS | BPF_B, ldW = BPF_LD | BPF_ABS | BPF_W;
  auto mix = [](std::vector<bpf_insn>& p) {  // r8 = r8 * 31 + r0
    p.push_back(insn(BPF_ALU64 | BPF_MUL | BPF_K, R8, 0, 0, 31));
    p.push_back(insn(BPF_ALU64 | BPF_ADD | BPF_X, R8, R0, 0, 0));
  };
  std::vector<bpf_insn> p;
  p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_X, R6, R1, 0, 0));
  p.push_back(insn(BPF_LDX | BPF_MEM | BPF_W, R9, R1, int16_t(offsetof(__sk_buff, len)), 0));
  p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, R8, 0, 0, 0));
  p.push_back(insn(ldB, 0, 0, 0, 0));  // version and IHL
  p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_X, R7, R0, 0, 0));
  p.push_back(insn(BPF_ALU64 | BPF_RSH | BPF_K, R0, 0, 0, 4));
  size_t toV6 = p.size();
  p.push_back(insn(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, 6));  // patched below
  // IPv4: addresses at 12 and 16, protocol at 9, ports at IHL * 4.
  for (int off : {12, 16}) p.push_back(insn(ldW, 0, 0, 0, off)), mix(p);
  p.push_back(insn(ldB, 0, 0, 0, 9)), mix(p);
  p.push_back(insn(BPF_ALU64 | BPF_AND | BPF_K, R7, 0, 0, 0xf));
  p.push_back(insn(BPF_ALU64 | BPF_LSH | BPF_K, R7, 0, 0, 2));
  p.push_back(insn(BPF_LD | BPF_IND | BPF_W, 0, R7, 0, 0)), mix(p);
  size_t toLookup = p.size();
  p.push_back(insn(BPF_JMP | BPF_JA, 0, 0, 0, 0));  // patched below
  p[toV6].off = int16_t(p.size() - toV6 - 1);
  // IPv6: addresses at 8..39, next header at 6, ports at 40 (extension headers are
  // not walked: such a flow's key just lacks its ports).
  for (int off = 8; off < 40; off += 4) p.push_back(insn(ldW, 0, 0, 0, off)), mix(p);
  p.push_back(insn(ldB, 0, 0, 0, 6)), mix(p);
  p.push_back(insn(ldW, 0, 0, 0, 40)), mix(p);
  p[toLookup].off = int16_t(p.size() - toLookup - 1);
  // Jumps to labels, patched once every label is placed.
  std::vector<std::pair<size_t, int>> jumps;
  size_t labels[4] = {};
  enum { kNewFlow, kMove, kReturn, kReturnStored };
  auto jump = [&](uint8_t op, uint8_t reg, int32_t imm, int label) {
    jumps.emplace_back(p.size(), label);
    p.push_back(insn(BPF_JMP | op | BPF_K, reg, 0, 0, imm));
  };
  auto label = [&](int l) { labels[l] = p.size(); };
  auto call = [&](int32_t helper) { p.push_back(insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper)); };
  bpf_insn loadMap = insn(BPF_LD | BPF_DW | BPF_IMM, R1, BPF_PSEUDO_MAP_FD, 0, mapFd);
  auto stackPtr = [&](uint8_t reg, int16_t off) {
    p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_X, reg, R10, 0, 0));
    p.push_back(insn(BPF_ALU64 | BPF_ADD | BPF_K, reg, 0, 0, off));
  };
  // The map value: u32 queue | kMoved at 0, u32 packets in this window at 4, u64 window start at 8.
  p.push_back(insn(BPF_STX | BPF_MEM | BPF_DW, R10, R8, -8, 0));  // the key
  p.push_back(loadMap), p.push_back(insn(0, 0, 0, 0, 0));
  stackPtr(R2, -8);
  call(BPF_FUNC_map_lookup_elem);
  jump(BPF_JEQ, R0, 0, kNewFlow);
  // Known flow: its queue, unless this packet shows it is bulk: a super-packet, or more
  // than kBurst packets within a millisecond (a small-packet stream). Then it moves,
  // once, to the next queue.
  p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_X, R7, R0, 0, 0));
  p.push_back(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R7, 0, 0));
  p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_X, R1, R0, 0, 0));
  p.push_back(insn(BPF_ALU64 | BPF_AND | BPF_K, R1, 0, 0, kMoved));
  jump(BPF_JNE, R1, 0, kReturn);
  jump(BPF_JGT, R9, kSuperPacket, kMove);
  call(BPF_FUNC_ktime_get_ns);
  p.push_back(insn(BPF_LDX | BPF_MEM | BPF_DW, R1, R7, 8, 0));
  p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_X, R2, R0, 0, 0));
  p.push_back(insn(BPF_ALU64 | BPF_SUB | BPF_X, R2, R1, 0, 0));
  p.push_back(insn(BPF_LDX | BPF_MEM | BPF_W, R1, R7, 4, 0));
  p.push_back(insn(BPF_ALU64 | BPF_ADD | BPF_K, R1, 0, 0, 1));
  p.push_back(insn(BPF_STX | BPF_MEM | BPF_W, R7, R1, 4, 0));
  jump(BPF_JGT, R2, kWindowNs, kReturnStored + 0);  // window over: restart it below
  jump(BPF_JGT, R1, kBurst, kMove);
  p.push_back(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R7, 0, 0));
  jump(BPF_JA, 0, 0, kReturn);
  label(kReturnStored);  // a new window from now, counting this packet
  p.push_back(insn(BPF_STX | BPF_MEM | BPF_DW, R7, R0, 8, 0));
  p.push_back(insn(BPF_ST | BPF_MEM | BPF_W, R7, 0, 4, 1));
  p.push_back(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R7, 0, 0));
  jump(BPF_JA, 0, 0, kReturn);
  label(kMove);
  p.push_back(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R7, 0, 0));
  p.push_back(insn(BPF_ALU64 | BPF_ADD | BPF_K, R0, 0, 0, kMoved + 1));
  p.push_back(insn(BPF_STX | BPF_MEM | BPF_W, R7, R0, 0, 0));
  label(kReturn);
  p.push_back(insn(BPF_ALU64 | BPF_AND | BPF_K, R0, 0, 0, kMoved - 1));
  p.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  // New flow: this CPU's queue (the next one if it starts with a super-packet),
  // remembered with a window starting now.
  label(kNewFlow);
  call(BPF_FUNC_ktime_get_ns);
  p.push_back(insn(BPF_STX | BPF_MEM | BPF_DW, R10, R0, -16, 0));
  p.push_back(insn(BPF_ST | BPF_MEM | BPF_W, R10, 0, -20, 1));
  call(BPF_FUNC_get_smp_processor_id);
  p.push_back(insn(BPF_STX | BPF_MEM | BPF_W, R10, R0, -28, 0));
  p.push_back(insn(BPF_LD | BPF_DW | BPF_IMM, R1, BPF_PSEUDO_MAP_FD, 0, queuesFd)), p.push_back(insn(0, 0, 0, 0, 0));
  stackPtr(R2, -28);
  call(BPF_FUNC_map_lookup_elem);
  p.push_back(insn(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 2, 0));  // a CPU past the map: itself
  p.push_back(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R0, 0, 0));
  p.push_back(insn(BPF_JMP | BPF_JA, 0, 0, 1, 0));
  p.push_back(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R10, -28, 0));
  p.push_back(insn(BPF_JMP | BPF_JLE | BPF_K, R9, 0, 1, kSuperPacket));
  p.push_back(insn(BPF_ALU64 | BPF_ADD | BPF_K, R0, 0, 0, kMoved + 1));
  p.push_back(insn(BPF_STX | BPF_MEM | BPF_W, R10, R0, -24, 0));
  p.push_back(loadMap), p.push_back(insn(0, 0, 0, 0, 0));
  stackPtr(R2, -8);
  stackPtr(R3, -24);
  p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, R4, 0, 0, BPF_ANY));
  call(BPF_FUNC_map_update_elem);
  p.push_back(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R10, -24, 0));
  p.push_back(insn(BPF_ALU64 | BPF_AND | BPF_K, R0, 0, 0, kMoved - 1));
  p.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  for (auto [at, l] : jumps) p[at].off = int16_t(labels[l] - at - 1);

  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  load.insn_cnt = uint32_t(p.size());
  load.insns = reinterpret_cast<uintptr_t>(p.data());
  load.license = reinterpret_cast<uintptr_t>("GPL");
  *progFd = bpf(BPF_PROG_LOAD, &load);
  int err = *progFd < 0 ? errno : 0;
  // The program holds its maps.
  close(mapFd);
  close(queuesFd);
  return err;
}

int attachCpuSteering(int tunFd, const std::vector<int>& queueCpus) {
  int progFd;
  if (int err = loadCpuSteering(queueCpus, &progFd)) return err;
  int err = ioctl(tunFd, TUNSETSTEERINGEBPF, &progFd) < 0 ? errno : 0;
  close(progFd);  // the device holds the program
  return err;
}

}  // namespace flatnet
