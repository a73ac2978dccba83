#include "nflog.h"

#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace flatnet {
namespace {

// Plenty for the acks and for one batch: the kernel fills an skb of NFULA_CFG_NLBUFSIZ
// (NLMSG_GOODSIZE by default, net/netfilter/nfnetlink_log.c) before it sends.
constexpr size_t kReadBuffer = 64 * 1024;
// Room for a burst of the table's limit (200 records of ~250 bytes) several times over.
constexpr int kReceiveBuffer = 1 << 20;

uint16_t be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

// Appends one netlink attribute (include/uapi/linux/netlink.h: nlattr, NLA_ALIGN) to msg.
void putAttr(std::vector<uint8_t>* msg, uint16_t type, const void* data, uint16_t len) {
  nlattr a{uint16_t(NLA_HDRLEN + len), type};
  size_t at = msg->size();
  msg->resize(at + NLA_ALIGN(NLA_HDRLEN + len));
  std::memcpy(msg->data() + at, &a, sizeof a);
  std::memcpy(msg->data() + at + NLA_HDRLEN, data, len);
}

// Waits (at most a second) for the kernel's answer to a request with NLM_F_ACK; 0 or its errno.
int awaitAck(int fd, uint32_t seq) {
  std::vector<uint8_t> buf(8192);
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, 1000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return ready == 0 ? ETIMEDOUT : errno;
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return errno;
    }
    int len = int(n);
    for (auto* nh = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(nh, len);
         nh = NLMSG_NEXT(nh, len)) {
      if (nh->nlmsg_type != NLMSG_ERROR || nh->nlmsg_seq != seq) continue;
      if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return EPROTO;
      return -static_cast<nlmsgerr*>(NLMSG_DATA(nh))->error;  // 0: the ack itself
    }
  }
}

}  // namespace

int nflogOpen(uint16_t group, uint32_t copyRange, const char** where) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) return *where = "socket(NETLINK_NETFILTER)", -errno;
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int err = errno;
    close(fd);
    return *where = "bind(NETLINK_NETFILTER)", -err;
  }
  // Best effort: the default buffer would still hold a burst of the table's limit.
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kReceiveBuffer, sizeof kReceiveBuffer);
  // One NFULNL_MSG_CONFIG does it all: nfulnl_recv_config (net/netfilter/nfnetlink_log.c)
  // runs the command (bind the group to this socket), then applies mode and flags to it.
  // No NFULNL_CFG_CMD_PF_UNBIND/PF_BIND: those set the network namespace's default logger
  // for a family (nf_log_bind_pf, net/netfilter/nf_log.c, the sysctl net.netfilter.nf_log.N),
  // which host tools own; nft's `log group` names its logger type itself (nf_log_packet
  // with NF_LOG_TYPE_ULOG), so packets reach the group without it.
  std::vector<uint8_t> msg(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)));
  nfulnl_msg_config_cmd cmd{NFULNL_CFG_CMD_BIND};
  putAttr(&msg, NFULA_CFG_CMD, &cmd, sizeof cmd);
  nfulnl_msg_config_mode mode{};
  mode.copy_range = htonl(copyRange);
  mode.copy_mode = NFULNL_COPY_PACKET;
  putAttr(&msg, NFULA_CFG_MODE, &mode, sizeof mode);
  // Sequence numbers per instance: a gap is records the kernel could not deliver.
  uint16_t flags = htons(NFULNL_CFG_F_SEQ);
  putAttr(&msg, NFULA_CFG_FLAGS, &flags, sizeof flags);
  auto* nh = reinterpret_cast<nlmsghdr*>(msg.data());
  nh->nlmsg_len = uint32_t(msg.size());
  nh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
  nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nh->nlmsg_seq = 1;
  auto* g = static_cast<nfgenmsg*>(NLMSG_DATA(nh));
  g->nfgen_family = AF_UNSPEC;
  g->version = NFNETLINK_V0;
  g->res_id = htons(group);
  if (send(fd, msg.data(), msg.size(), 0) < 0) {
    int err = errno;
    close(fd);
    return *where = "send(NFULNL_MSG_CONFIG)", -err;
  }
  if (int err = awaitAck(fd, 1)) {
    close(fd);
    return *where = "NFULNL_CFG_CMD_BIND", -err;
  }
  return fd;
}

int nflogRead(int fd, size_t max, std::vector<NflogRecord>* out, uint64_t* overruns) {
  std::vector<uint8_t> buf(kReadBuffer);
  // A batch may end past max by one message's packets: max bounds the work, not exactly.
  while (out->size() < max) {
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return 0;
      // The receive buffer overflowed: the kernel dropped messages (the gap in NFULA_SEQ says how
      // many).
      if (errno == ENOBUFS) {
        ++*overruns;
        continue;
      }
      return errno;
    }
    int len = int(n);
    for (auto* nh = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(nh, len);
         nh = NLMSG_NEXT(nh, len)) {
      if (NFNL_SUBSYS_ID(nh->nlmsg_type) != NFNL_SUBSYS_ULOG ||
          NFNL_MSG_TYPE(nh->nlmsg_type) != NFULNL_MSG_PACKET)
        continue;  // NLMSG_DONE closing a batch, or an ack
      size_t head = NLMSG_LENGTH(NLMSG_ALIGN(sizeof(nfgenmsg)));
      if (nh->nlmsg_len < head) continue;
      const auto* g = static_cast<const nfgenmsg*>(NLMSG_DATA(nh));
      NflogRecord r;
      if (parseNflogPacket(g->nfgen_family,
                           reinterpret_cast<const uint8_t*>(nh) + NLMSG_ALIGN(head),
                           nh->nlmsg_len - NLMSG_ALIGN(head), &r))
        out->push_back(r);
    }
  }
  return 0;
}

bool parseNflogPacket(uint8_t family, const uint8_t* attrs, size_t len, NflogRecord* r) {
  bool payload = false;
  // nfgen_family is the hook's: NFPROTO_IPV4/IPV6 for the inet table's forward chain.
  uint8_t fam = family == AF_INET ? 4 : family == AF_INET6 ? 6 : 0;
  while (len >= NLA_HDRLEN) {
    nlattr a;
    std::memcpy(&a, attrs, sizeof a);
    if (a.nla_len < NLA_HDRLEN || a.nla_len > len) return false;
    const uint8_t* d = attrs + NLA_HDRLEN;
    size_t n = a.nla_len - NLA_HDRLEN;
    switch (a.nla_type & NLA_TYPE_MASK) {
      case NFULA_PREFIX: {
        // NUL-terminated by the kernel; cut to the field either way.
        size_t k = 0;
        while (k < n && k < sizeof r->prefix - 1 && d[k] != 0) k++;
        std::memcpy(r->prefix, d, k);
        r->prefix[k] = 0;
        break;
      }
      case NFULA_PAYLOAD:
        payload = parseNflogPayload(fam, d, n, r);
        break;
      case NFULA_IFINDEX_INDEV:
        if (n >= 4) r->indev = be32(d);
        break;
      case NFULA_IFINDEX_OUTDEV:
        if (n >= 4) r->outdev = be32(d);
        break;
      case NFULA_IFINDEX_PHYSINDEV:
        if (n >= 4) r->physindev = be32(d);
        break;
      case NFULA_IFINDEX_PHYSOUTDEV:
        if (n >= 4) r->physoutdev = be32(d);
        break;
      case NFULA_SEQ:
        if (n >= 4) r->seq = be32(d), r->hasSeq = true;
        break;
    }
    size_t step = NLA_ALIGN(a.nla_len);
    if (step >= len) break;
    attrs += step;
    len -= step;
  }
  return payload;
}

bool parseNflogPayload(uint8_t family, const uint8_t* p, size_t n, NflogRecord* r) {
  if (n < 1) return false;
  uint8_t version = p[0] >> 4;
  if (family != 0 && family != version) return false;
  size_t off;
  uint8_t proto;
  bool ports = true;
  if (version == 4) {
    // include/uapi/linux/ip.h: struct iphdr.
    size_t ihl = size_t(p[0] & 0x0f) * 4;
    if (n < 20 || ihl < 20 || ihl > n) return false;
    proto = p[9];
    std::memcpy(r->saddr, p + 12, 4);
    std::memcpy(r->daddr, p + 16, 4);
    ports = (be16(p + 6) & 0x1fff) == 0;  // a later fragment has no transport header
    off = ihl;
  } else if (version == 6) {
    // include/uapi/linux/ipv6.h: struct ipv6hdr, then extension headers (RFC 8200 section 4).
    if (n < 40) return false;
    proto = p[6];
    std::memcpy(r->saddr, p + 8, 16);
    std::memcpy(r->daddr, p + 24, 16);
    off = 40;
    // At most 8 extension headers, each inside the copy, before the transport header.
    for (int k = 0;
         k < 8 && (proto == 0 || proto == 43 || proto == 44 || proto == 51 || proto == 60); k++) {
      if (off + 8 > n) {
        ports = false;
        break;
      }
      uint8_t next = p[off];
      if (proto == 44) {  // fragment: a later one has no transport header
        ports = ports && (be16(p + off + 2) & 0xfff8) == 0;
        off += 8;
      } else if (proto == 51) {  // authentication header: length in 4-byte units
        off += (size_t(p[off + 1]) + 2) * 4;
      } else {  // hop-by-hop, routing, destination options: in 8-byte units
        off += (size_t(p[off + 1]) + 1) * 8;
      }
      proto = next;
    }
  } else {
    return false;
  }
  r->family = version;
  r->proto = proto;
  // TCP, UDP, DCCP, SCTP and UDP-Lite all start with source and destination port.
  bool hasPorts = proto == 6 || proto == 17 || proto == 33 || proto == 132 || proto == 136;
  if (ports && hasPorts && off + 4 <= n) {
    r->sport = be16(p + off);
    r->dport = be16(p + off + 2);
  }
  return true;
}

}  // namespace flatnet
