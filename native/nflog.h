// A reader of one NFLOG group (nfnetlink_log): the policy table's deny chains copy the
// headers of denied first packets there (`log group N snaplen 128`, src/policy/nftables.ts).
// It reads what the kernel queued in batches, non-blocking, and keeps of each packet only
// what `flatnet policy drops` shows; the forward path never waits for it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace flatnet {

// One logged packet: the addresses (4 or 16 bytes used), the transport protocol and ports
// (0 when the copy holds none: ICMP, a later fragment), the interfaces and the rule's prefix.
struct NflogRecord {
  uint8_t family = 0;  // 4 or 6
  uint8_t proto = 0;
  uint16_t sport = 0, dport = 0;
  uint8_t saddr[16] = {}, daddr[16] = {};
  uint32_t indev = 0, outdev = 0, physindev = 0, physoutdev = 0;
  uint32_t seq = 0;
  bool hasSeq = false;
  char prefix[128] = {};  // NF_LOG_PREFIXLEN (include/net/netfilter/nf_log.h)
};

// Opens a NETLINK_NETFILTER socket (non-blocking) and binds it to group, copying at most
// copyRange bytes of each packet. Returns the fd, or -errno with *where naming the step
// (EPERM or EBUSY: another socket holds the group, e.g. a predecessor daemon).
int nflogOpen(uint16_t group, uint32_t copyRange, const char** where);

// Reads what is queued, up to max records, without blocking. Returns 0 or an errno;
// *overruns counts ENOBUFS (the socket's buffer overflowed and the kernel dropped messages).
int nflogRead(int fd, size_t max, std::vector<NflogRecord>* out, uint64_t* overruns);

// Parses one NFULNL_MSG_PACKET's attributes (after the nfgenmsg): pure, for tests and fuzzing.
// Returns false when it is not a packet this reader can describe.
bool parseNflogPacket(uint8_t family, const uint8_t* attrs, size_t len, NflogRecord* r);

// Parses the copied network header into r's addresses, protocol and ports.
bool parseNflogPayload(uint8_t family, const uint8_t* p, size_t n, NflogRecord* r);

}  // namespace flatnet
