// The multi-queue TUN's steering program (eBPF, written out instruction by
// instruction: flatnet carries no BPF toolchain or library).
#include "steering.h"

#include <linux/bpf.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
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
// The TUN's program (loadCpuSteering):
constexpr int32_t kMoved = 1 << 30;         // in a map value: the flow went to the next queue
constexpr int32_t kSuperPacket = 1500;      // longer than any single packet on the TUN
constexpr int32_t kWindowNs = 1'000'000;    // a flow's packet rate is counted per millisecond
constexpr int32_t kBurst = 256;             // packets in one window that make a flow bulk (256k/s)
constexpr int32_t kSpreadNs = 100'000'000;  // bulk flows moving this close together spread out
// The receive sockets' program (attachFlowSteering):
constexpr uint32_t kFlowKeyLen = 40;  // bytes: inner addresses, protocol, ports
constexpr int32_t kFollowNs =
    100'000'000;  // a flow arriving only on another CPU this long follows it

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

// A program being written: instructions, and jumps to labels patched once every
// label is placed.
struct Program {
  std::vector<bpf_insn> p;
  std::vector<std::pair<size_t, int>> jumps;
  std::vector<size_t> labels;

  int newLabel() { return labels.push_back(0), int(labels.size()) - 1; }
  void add(bpf_insn i) { p.push_back(i); }
  void jump(uint8_t op, uint8_t reg, int32_t imm, int label) {
    jumps.emplace_back(p.size(), label);
    add(insn(BPF_JMP | op | BPF_K, reg, 0, 0, imm));
  }
  void jumpIfEqual(uint8_t reg, uint8_t other, int label) {
    jumps.emplace_back(p.size(), label);
    add(insn(BPF_JMP | BPF_JEQ | BPF_X, reg, other, 0, 0));
  }
  void label(int l) { labels[size_t(l)] = p.size(); }
  void call(int32_t helper) { add(insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper)); }
  void loadMap(uint8_t reg, int mapFd) {  // a 16-byte instruction
    add(insn(BPF_LD | BPF_DW | BPF_IMM, reg, BPF_PSEUDO_MAP_FD, 0, mapFd));
    add(insn(0, 0, 0, 0, 0));
  }
  void stackPtr(uint8_t reg, int16_t off) {  // reg = frame pointer + off
    add(insn(BPF_ALU64 | BPF_MOV | BPF_X, reg, R10, 0, 0));
    add(insn(BPF_ALU64 | BPF_ADD | BPF_K, reg, 0, 0, off));
  }
  // r0 = the map's value for the key on the stack at keyAt, or 0 (uses r1-r5).
  void lookup(int mapFd, int16_t keyAt) {
    loadMap(R1, mapFd);
    stackPtr(R2, keyAt);
    call(BPF_FUNC_map_lookup_elem);
  }
  // Stores the value at valueAt under the key at keyAt (uses r0-r5).
  void update(int mapFd, int16_t keyAt, int16_t valueAt) {
    loadMap(R1, mapFd);
    stackPtr(R2, keyAt);
    stackPtr(R3, valueAt);
    add(insn(BPF_ALU64 | BPF_MOV | BPF_K, R4, 0, 0, BPF_ANY));
    call(BPF_FUNC_map_update_elem);
  }
  // Loads it; returns the program's fd or -errno.
  int load(bpf_prog_type type) {
    for (auto [at, l] : jumps) p[at].off = int16_t(labels[size_t(l)] - at - 1);
    bpf_attr attr{};
    attr.prog_type = type;
    attr.insn_cnt = uint32_t(p.size());
    attr.insns = reinterpret_cast<uintptr_t>(p.data());
    attr.license = reinterpret_cast<uintptr_t>("GPL");
    int fd = bpf(BPF_PROG_LOAD, &attr);
    return fd < 0 ? -errno : fd;
  }
};

// A map, or -errno.
int createMap(bpf_map_type type, uint32_t keySize, uint32_t valueSize, uint32_t entries) {
  bpf_attr map{};
  map.map_type = type;
  map.key_size = keySize;
  map.value_size = valueSize;
  map.max_entries = entries;
  int fd = bpf(BPF_MAP_CREATE, &map);
  return fd < 0 ? -errno : fd;
}

int updateMap(int mapFd, const void* key, const void* value) {
  bpf_attr set{};
  set.map_fd = uint32_t(mapFd);
  set.key = reinterpret_cast<uintptr_t>(key);
  set.value = reinterpret_cast<uintptr_t>(value);
  return bpf(BPF_MAP_UPDATE_ELEM, &set) < 0 ? errno : 0;
}

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
  int fd = createMap(BPF_MAP_TYPE_ARRAY, 4, 4, uint32_t(cpus));
  if (fd < 0) return fd;
  for (uint32_t cpu = 0; cpu < uint32_t(cpus); cpu++) {
    uint32_t queue = uint32_t(queueOfCpu(queueCpus, int(cpu)));
    if (int err = updateMap(fd, &cpu, &queue)) return close(fd), -err;
  }
  return fd;
}

// r0 = the queue of the CPU the program runs on (uses r1-r5 and 4 bytes of stack at
// scratch): from the map, or CPU % queues for a CPU past it (one brought online later).
void thisCpusQueue(Program& g, int queuesFd, int queues, int16_t scratch) {
  g.call(BPF_FUNC_get_smp_processor_id);
  g.add(insn(BPF_STX | BPF_MEM | BPF_W, R10, R0, scratch, 0));
  g.lookup(queuesFd, scratch);
  g.add(insn(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 2, 0));
  g.add(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R0, 0, 0));
  g.add(insn(BPF_JMP | BPF_JA, 0, 0, 2, 0));
  g.add(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R10, scratch, 0));
  g.add(insn(BPF_ALU64 | BPF_MOD | BPF_K, R0, 0, 0, queues));
}

// r0 = how many queues on a bulk flow moves: 1 (the next CPU's), then 2, 3, ... round
// the other queues for each further flow this CPU moves within kSpreadNs of the last
// (a parallel download, iperf3 -P), so they do not all land on the one next CPU; after
// a quiet spell the count starts again at the next. From a per-CPU map: u32 moves at
// 0, the u64 time of the last at 8. Uses r1-r5, r8, r9 and 4 bytes of stack at scratch.
void moveStep(Program& g, int movesFd, int queues, int16_t scratch) {
  const int kDone = g.newLabel();
  g.add(insn(BPF_ST | BPF_MEM | BPF_W, R10, 0, scratch, 0));
  g.lookup(movesFd, scratch);
  g.add(insn(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 2, 0));
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, 1));
  g.jump(BPF_JA, 0, 0, kDone);
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R8, R0, 0, 0));
  g.call(BPF_FUNC_ktime_get_ns);
  g.add(insn(BPF_LDX | BPF_MEM | BPF_DW, R1, R8, 8, 0));
  g.add(insn(BPF_STX | BPF_MEM | BPF_DW, R8, R0, 8, 0));
  g.add(insn(BPF_ALU64 | BPF_SUB | BPF_X, R0, R1, 0, 0));
  g.add(insn(BPF_LDX | BPF_MEM | BPF_W, R9, R8, 0, 0));
  g.add(insn(BPF_JMP | BPF_JLE | BPF_K, R0, 0, 1, kSpreadNs));
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_K, R9, 0, 0, 0));  // a quiet spell: start over
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R1, R9, 0, 0));
  g.add(insn(BPF_ALU64 | BPF_ADD | BPF_K, R1, 0, 0, 1));
  g.add(insn(BPF_STX | BPF_MEM | BPF_W, R8, R1, 0, 0));
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R0, R9, 0, 0));
  g.add(insn(BPF_ALU64 | BPF_MOD | BPF_K, R0, 0, 0, std::max(queues - 1, 1)));
  g.add(insn(BPF_ALU64 | BPF_ADD | BPF_K, R0, 0, 0, 1));
  g.label(kDone);
}

// Writes a received datagram's flow key to the stack at -40 (kFlowKeyLen bytes), for
// r6 = the SK_REUSEPORT context; uses r0-r5, r7, r9 and 8 bytes at -48. The flow is
// the inner packet's addresses, protocol and (TCP, UDP) ports, not the outer ones: a
// flatnet peer sends many inner flows from each of its few sockets. Addresses at -40
// (8 bytes IPv4, 32 IPv6), protocol at -8, ports at -4; what a short or odd packet
// lacks stays zero.
void innerFlowKey(Program& g) {
  const int kV6 = g.newLabel(), kPorts = g.newLabel(), kKeyed = g.newLabel();
  constexpr int32_t kInner = 8 + 8 + 14;  // the inner IP header, after UDP, VXLAN, Ethernet headers
  auto loadBytes = [&](int32_t offset, int16_t to, int32_t len) {  // offset is added to r9
    g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R1, R6, 0, 0));
    g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R2, R9, 0, 0));
    g.add(insn(BPF_ALU64 | BPF_ADD | BPF_K, R2, 0, 0, offset));
    g.stackPtr(R3, to);
    g.add(insn(BPF_ALU64 | BPF_MOV | BPF_K, R4, 0, 0, len));
    g.call(BPF_FUNC_skb_load_bytes);
  };
  for (int16_t off = -48; off < 0; off += 8) g.add(insn(BPF_ST | BPF_MEM | BPF_DW, R10, 0, off, 0));
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_K, R9, 0, 0, 0));
  loadBytes(kInner, -48, 1);  // version and IHL
  g.add(insn(BPF_LDX | BPF_MEM | BPF_B, R7, R10, -48, 0));
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R0, R7, 0, 0));
  g.add(insn(BPF_ALU64 | BPF_RSH | BPF_K, R0, 0, 0, 4));
  g.jump(BPF_JEQ, R0, 6, kV6);
  g.jump(BPF_JNE, R0, 4, kKeyed);
  loadBytes(kInner + 12, -40, 8);
  loadBytes(kInner + 9, -8, 1);
  g.add(insn(BPF_ALU64 | BPF_AND | BPF_K, R7, 0, 0, 0xf));  // r9 = IHL * 4: the ports' offset
  g.add(insn(BPF_ALU64 | BPF_LSH | BPF_K, R7, 0, 0, 2));
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R9, R7, 0, 0));
  g.jump(BPF_JA, 0, 0, kPorts);
  g.label(kV6);  // extension headers are not walked: such a flow's key lacks its ports
  loadBytes(kInner + 8, -40, 32);
  loadBytes(kInner + 6, -8, 1);
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_K, R9, 0, 0, 40));
  g.label(kPorts);  // TCP and UDP only: what follows an ICMP header changes per packet
  g.add(insn(BPF_LDX | BPF_MEM | BPF_B, R0, R10, -8, 0));
  g.add(insn(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 1, 6));
  g.jump(BPF_JNE, R0, 17, kKeyed);
  loadBytes(kInner, -4, 4);
  g.label(kKeyed);
}

}  // namespace

// The steering program, for a multi-queue TUN (tun takes its result modulo the
// number of queues). A flow's first packet picks the queue of the CPU it is sent on
// (from an array map: queue q is the worker pinned to queueCpus[q], which is not CPU
// q in a cpuset with gaps), and the flow keeps that queue (an LRU map from a hash of
// its addresses, protocol and ports): the worker pinned to that CPU reads it, woken
// without an inter-processor interrupt (what a round trip costs most in a VM), and a
// flow's packets are never split over two workers. Without the map (queue = this CPU
// per packet) a TCP sender's data leaves from its own CPU and, ACK-clocked, from the
// CPU its ACKs came in on, and the two workers reorder the flow. A flow that shows it
// is bulk (a GSO super-packet, or more than kBurst packets in a millisecond) moves,
// once and early in its life, to the next queue (the next CPU's), where its per-packet
// work (segmenting, checksums, copies) runs beside the sending application instead of
// competing with it. Request/response flows never move. The packet-rate rule applies
// only with moveBursts (offloads on): without offloads each small packet costs both
// daemons a syscall, and moved next to the receiving application they overload its CPU.
// Bulk flows that start together move round the other CPUs (moveStep), never back to
// the sender's own. The measurements: docs/performance.md, decision records.
int loadCpuSteering(const std::vector<int>& queueCpus, bool moveBursts, int* progFd) {
  int queuesFd = queueMap(queueCpus);
  if (queuesFd < 0) return -queuesFd;
  int mapFd = createMap(BPF_MAP_TYPE_LRU_HASH, 8, 16, 16384);
  if (mapFd < 0) return close(queuesFd), -mapFd;
  int movesFd = createMap(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 16, 1);
  if (movesFd < 0) return close(queuesFd), close(mapFd), -movesFd;
  // The key: the IP addresses, protocol and the first 4 bytes after the IP header
  // (ports), folded into 64 bits. LD_ABS/LD_IND read the packet from r6 = ctx; an
  // out-of-range read ends the program with 0 (queue 0), which stays correct.
  const uint8_t ldB = BPF_LD | BPF_ABS | BPF_B, ldW = BPF_LD | BPF_ABS | BPF_W;
  Program g;
  auto mix = [&] {  // r8 = r8 * 31 + r0
    g.add(insn(BPF_ALU64 | BPF_MUL | BPF_K, R8, 0, 0, 31));
    g.add(insn(BPF_ALU64 | BPF_ADD | BPF_X, R8, R0, 0, 0));
  };
  // Moves the flow whose u32 queue is at base + off: adds moveStep's queues and kMoved
  // (leaves r0 = the stored value).
  auto move = [&](uint8_t base, int16_t off) {
    moveStep(g, movesFd, int(queueCpus.size()), -32);
    g.add(insn(BPF_LDX | BPF_MEM | BPF_W, R1, base, off, 0));
    g.add(insn(BPF_ALU64 | BPF_ADD | BPF_X, R0, R1, 0, 0));
    g.add(insn(BPF_ALU64 | BPF_ADD | BPF_K, R0, 0, 0, kMoved));
    g.add(insn(BPF_STX | BPF_MEM | BPF_W, base, R0, off, 0));
  };
  const int kV6 = g.newLabel(), kLookup = g.newLabel(), kNewFlow = g.newLabel(),
            kMove = g.newLabel(), kReturn = g.newLabel(), kReturnStored = g.newLabel(),
            kStore = g.newLabel();
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R6, R1, 0, 0));
  g.add(insn(BPF_LDX | BPF_MEM | BPF_W, R9, R1, int16_t(offsetof(__sk_buff, len)), 0));
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_K, R8, 0, 0, 0));
  g.add(insn(ldB, 0, 0, 0, 0));  // version and IHL
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R7, R0, 0, 0));
  g.add(insn(BPF_ALU64 | BPF_RSH | BPF_K, R0, 0, 0, 4));
  g.jump(BPF_JEQ, R0, 6, kV6);
  // IPv4: addresses at 12 and 16, protocol at 9, ports at IHL * 4.
  for (int off : {12, 16}) g.add(insn(ldW, 0, 0, 0, off)), mix();
  g.add(insn(ldB, 0, 0, 0, 9)), mix();
  g.add(insn(BPF_ALU64 | BPF_AND | BPF_K, R7, 0, 0, 0xf));
  g.add(insn(BPF_ALU64 | BPF_LSH | BPF_K, R7, 0, 0, 2));
  g.add(insn(BPF_LD | BPF_IND | BPF_W, 0, R7, 0, 0)), mix();
  g.jump(BPF_JA, 0, 0, kLookup);
  // IPv6: addresses at 8..39, next header at 6, ports at 40 (extension headers are
  // not walked: such a flow's key just lacks its ports).
  g.label(kV6);
  for (int off = 8; off < 40; off += 4) g.add(insn(ldW, 0, 0, 0, off)), mix();
  g.add(insn(ldB, 0, 0, 0, 6)), mix();
  g.add(insn(ldW, 0, 0, 0, 40)), mix();
  // The map value: u32 queue | kMoved at 0, u32 packets in this window at 4, u64 window start at 8.
  g.label(kLookup);
  g.add(insn(BPF_STX | BPF_MEM | BPF_DW, R10, R8, -8, 0));  // the key
  g.lookup(mapFd, -8);
  g.jump(BPF_JEQ, R0, 0, kNewFlow);
  // Known flow: its queue, unless this packet shows it is bulk: a super-packet, or more
  // than kBurst packets within a millisecond (a small-packet stream). Then it moves,
  // once, to another queue (moveStep).
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R7, R0, 0, 0));
  g.add(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R7, 0, 0));
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R1, R0, 0, 0));
  g.add(insn(BPF_ALU64 | BPF_AND | BPF_K, R1, 0, 0, kMoved));
  g.jump(BPF_JNE, R1, 0, kReturn);
  g.jump(BPF_JGT, R9, kSuperPacket, kMove);
  if (moveBursts) {
    g.call(BPF_FUNC_ktime_get_ns);
    g.add(insn(BPF_LDX | BPF_MEM | BPF_DW, R1, R7, 8, 0));
    g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R2, R0, 0, 0));
    g.add(insn(BPF_ALU64 | BPF_SUB | BPF_X, R2, R1, 0, 0));
    g.add(insn(BPF_LDX | BPF_MEM | BPF_W, R1, R7, 4, 0));
    g.add(insn(BPF_ALU64 | BPF_ADD | BPF_K, R1, 0, 0, 1));
    g.add(insn(BPF_STX | BPF_MEM | BPF_W, R7, R1, 4, 0));
    g.jump(BPF_JGT, R2, kWindowNs, kReturnStored);  // window over: restart it below
    g.jump(BPF_JGT, R1, kBurst, kMove);
    g.add(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R7, 0, 0));
    g.jump(BPF_JA, 0, 0, kReturn);
    g.label(kReturnStored);  // a new window from now, counting this packet
    g.add(insn(BPF_STX | BPF_MEM | BPF_DW, R7, R0, 8, 0));
    g.add(insn(BPF_ST | BPF_MEM | BPF_W, R7, 0, 4, 1));
  }
  g.add(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R7, 0, 0));
  g.jump(BPF_JA, 0, 0, kReturn);
  g.label(kMove);
  move(R7, 0);
  g.label(kReturn);
  g.add(insn(BPF_ALU64 | BPF_AND | BPF_K, R0, 0, 0, kMoved - 1));
  g.add(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  // New flow: this CPU's queue (another if it starts with a super-packet),
  // remembered with a window starting now.
  g.label(kNewFlow);
  g.call(BPF_FUNC_ktime_get_ns);
  g.add(insn(BPF_STX | BPF_MEM | BPF_DW, R10, R0, -16, 0));
  g.add(insn(BPF_ST | BPF_MEM | BPF_W, R10, 0, -20, 1));
  thisCpusQueue(g, queuesFd, int(queueCpus.size()), -28);
  g.add(insn(BPF_STX | BPF_MEM | BPF_W, R10, R0, -24, 0));
  g.jump(BPF_JLE, R9, kSuperPacket, kStore);
  move(R10, -24);
  g.label(kStore);
  g.update(mapFd, -8, -24);
  g.add(insn(BPF_LDX | BPF_MEM | BPF_W, R0, R10, -24, 0));
  g.add(insn(BPF_ALU64 | BPF_AND | BPF_K, R0, 0, 0, kMoved - 1));
  g.add(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));

  *progFd = g.load(BPF_PROG_TYPE_SOCKET_FILTER);
  // The program holds its maps.
  close(mapFd);
  close(queuesFd);
  close(movesFd);
  return *progFd < 0 ? -*progFd : 0;
}

// The receive sockets' program (SK_REUSEPORT, attached to the VTEP port's reuseport
// group, socket q served on CPU queueCpus[q]). Picking by the CPU a datagram arrives on
// (as the classic BPF fallback in udp.cc does) splits a flow whose sender transmits
// from two CPUs: a kernel vxlan peer's TCP sends from the application's CPU and,
// ACK-clocked, from the CPU its ACKs arrive on, and on a veth underlay the datagrams
// arrive there, so two workers reorder the flow. So a flow (of the inner packet) keeps
// the socket of the CPU it first arrived on, and moves to another CPU's only after
// arriving nowhere else for kFollowNs: a flatnet peer's flow that moved to its next
// CPU (loadCpuSteering) is followed after that, so its worker is again woken on its
// own CPU. A shorter wait follows a kernel sender's runs on one CPU and reorders
// (docs/performance.md).
int attachFlowSteering(const std::vector<int>& rxFds, const std::vector<int>& queueCpus) {
  int queues = int(rxFds.size());
  int queuesFd = queueMap(queueCpus);
  if (queuesFd < 0) return -queuesFd;
  int flowsFd = createMap(BPF_MAP_TYPE_LRU_HASH, kFlowKeyLen, 16, 16384);
  int socketsFd = createMap(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8, uint32_t(queues));
  auto closeMaps = [&] {
    for (int fd : {queuesFd, flowsFd, socketsFd})
      if (fd >= 0) close(fd);
  };
  if (flowsFd < 0 || socketsFd < 0) return closeMaps(), -(flowsFd < 0 ? flowsFd : socketsFd);
  for (uint32_t q = 0; q < uint32_t(queues); q++) {
    uint64_t fd = uint64_t(rxFds[q]);
    if (int err = updateMap(socketsFd, &q, &fd)) return closeMaps(), err;
  }
  Program g;
  const int kNewFlow = g.newLabel(), kHome = g.newLabel(), kStayed = g.newLabel(),
            kSelect = g.newLabel();
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R6, R1, 0, 0));
  innerFlowKey(g);
  // The flow map's value: u32 socket at 0; u32 another CPU's socket the flow arrives
  // for at 4, since the u64 time at 8 (arrivals at the flow's own CPU reset it).
  thisCpusQueue(g, queuesFd, queues, -52);
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R8, R0, 0, 0));  // r8: this CPU's socket
  g.lookup(flowsFd, -40);
  g.jump(BPF_JEQ, R0, 0, kNewFlow);
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R7, R0, 0, 0));
  g.add(insn(BPF_LDX | BPF_MEM | BPF_W, R9, R7, 0, 0));  // r9: the flow's socket
  g.jumpIfEqual(R9, R8, kHome);
  g.call(BPF_FUNC_ktime_get_ns);
  g.add(insn(BPF_LDX | BPF_MEM | BPF_W, R1, R7, 4, 0));
  g.jumpIfEqual(R1, R8, kStayed);
  // First arrival for another CPU's socket since the flow was last at its own.
  g.add(insn(BPF_STX | BPF_MEM | BPF_W, R7, R8, 4, 0));
  g.add(insn(BPF_STX | BPF_MEM | BPF_DW, R7, R0, 8, 0));
  g.jump(BPF_JA, 0, 0, kSelect);
  g.label(kStayed);  // arriving only there: follow after kFollowNs
  g.add(insn(BPF_LDX | BPF_MEM | BPF_DW, R1, R7, 8, 0));
  g.add(insn(BPF_ALU64 | BPF_SUB | BPF_X, R0, R1, 0, 0));
  g.jump(BPF_JLE, R0, kFollowNs, kSelect);
  g.add(insn(BPF_STX | BPF_MEM | BPF_W, R7, R8, 0, 0));
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R9, R8, 0, 0));
  g.jump(BPF_JA, 0, 0, kSelect);
  g.label(kHome);  // at its own CPU: forget any other
  g.add(insn(BPF_STX | BPF_MEM | BPF_W, R7, R8, 4, 0));
  g.jump(BPF_JA, 0, 0, kSelect);
  g.label(kNewFlow);  // this CPU's socket from now on
  g.add(insn(BPF_STX | BPF_MEM | BPF_W, R10, R8, -72, 0));
  g.add(insn(BPF_STX | BPF_MEM | BPF_W, R10, R8, -68, 0));
  g.add(insn(BPF_ST | BPF_MEM | BPF_DW, R10, 0, -64, 0));
  g.update(flowsFd, -40, -72);
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R9, R8, 0, 0));
  // Select socket r9; should it fail (a socket closing), the kernel picks by hash.
  g.label(kSelect);
  g.add(insn(BPF_STX | BPF_MEM | BPF_W, R10, R9, -76, 0));
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_X, R1, R6, 0, 0));
  g.loadMap(R2, socketsFd);
  g.stackPtr(R3, -76);
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_K, R4, 0, 0, 0));
  g.call(BPF_FUNC_sk_select_reuseport);
  g.add(insn(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, SK_PASS));
  g.add(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  int progFd = g.load(BPF_PROG_TYPE_SK_REUSEPORT);
  closeMaps();  // the program holds them
  if (progFd < 0) return -progFd;
  int err = setsockopt(rxFds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &progFd, sizeof progFd) < 0
                ? errno
                : 0;
  close(progFd);  // the group holds it
  return err;
}

int attachCpuSteering(int tunFd, const std::vector<int>& queueCpus, bool moveBursts) {
  int progFd;
  if (int err = loadCpuSteering(queueCpus, moveBursts, &progFd)) return err;
  int err = ioctl(tunFd, TUNSETSTEERINGEBPF, &progFd) < 0 ? errno : 0;
  close(progFd);  // the device holds the program
  return err;
}

}  // namespace flatnet
