// exports.testing, forwarding table part: a Table object driving one Fib through
// the same conversions the Dataplane uses (for model-based tests and the peers
// benchmark), and fibStress, which runs the workers' lock-free reads against a
// writer that keeps changing the table and freeing what it retired.
#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "fib.h"
#include "js_table.h"
#include "qsbr.h"
#include "testing.h"
#include "udp.h"

namespace flatnet {
namespace {

Napi::Value nameOrNull(Napi::Env env, const Peer* p) {
  return p ? Napi::Value(Napi::String::New(env, p->name)) : env.Null();
}

// new Table(): setTable / updatePeers as on the Dataplane, lookups as the workers make them.
// No other thread reads it, so what a change retires is freed at once.
class TableWrap : public Napi::ObjectWrap<TableWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Table",
        {InstanceMethod("setTable", &TableWrap::SetTable),
         InstanceMethod("updatePeers", &TableWrap::UpdatePeers),
         InstanceMethod("lookup", &TableWrap::Lookup),
         InstanceMethod("peerByAddress", &TableWrap::PeerByAddress),
         InstanceMethod("isLocal", &TableWrap::IsLocal), InstanceMethod("peers", &TableWrap::Peers),
         InstanceMethod("benchLookup", &TableWrap::BenchLookup)});
  }
  explicit TableWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TableWrap>(info) {}

 private:
  Napi::Value SetTable(const Napi::CallbackInfo& info) {
    setTableFromJs(&fib_, info[0].As<Napi::Object>());
    fib_.takeRetired();
    return info.Env().Undefined();
  }
  Napi::Value UpdatePeers(const Napi::CallbackInfo& info) {
    updatePeersFromJs(&fib_, info[0].As<Napi::Object>());
    fib_.takeRetired();
    return info.Env().Undefined();
  }
  // lookup(innerDestination) -> peer name or null
  Napi::Value Lookup(const Napi::CallbackInfo& info) {
    IpAddr a = addrFromJs(info[0]);
    return nameOrNull(info.Env(), fib_.lookup(a.family, a.bytes));
  }
  // peerByAddress(underlayAddress) -> peer name or null
  Napi::Value PeerByAddress(const Napi::CallbackInfo& info) {
    return nameOrNull(info.Env(), fib_.peerByAddress(addrFromJs(info[0])));
  }
  Napi::Value IsLocal(const Napi::CallbackInfo& info) {
    IpAddr a = addrFromJs(info[0]);
    return Napi::Boolean::New(info.Env(), fib_.isLocal(a.family, a.bytes));
  }
  Napi::Value Peers(const Napi::CallbackInfo& info) {
    Napi::Array names = Napi::Array::New(info.Env());
    fib_.forEachPeer([&](const Peer& p) { names.Set(names.Length(), p.name); });
    return names;
  }
  // benchLookup(innerDestinations: Buffer[], repeat) -> routed count: the transmit
  // worker's per-packet lookup, over the destinations in turn.
  Napi::Value BenchLookup(const Napi::CallbackInfo& info) {
    Napi::Array list = info[0].As<Napi::Array>();
    std::vector<IpAddr> dsts;
    for (uint32_t i = 0; i < list.Length(); i++) dsts.push_back(addrFromJs(list.Get(i)));
    uint32_t repeat = info[1].As<Napi::Number>().Uint32Value();
    double routed = 0;
    for (uint32_t r = 0; r < repeat; r++)
      for (const IpAddr& a : dsts) routed += fib_.lookup(a.family, a.bytes) != nullptr;
    return Napi::Number::New(info.Env(), routed);
  }

 public:
  const Fib& fib() const { return fib_; }

 private:
  Fib fib_;
};

// Node i of the stress table: pod CIDR 10.i.i.0/24 or /25 (it moves between them)
// and VTEP 100.64.i.i (i in two bytes). Node 0 keeps its CIDR and VTEP but is
// replaced by a new version all the time, and never removed.
struct StressNode {
  std::string name;
  Prefix wide, narrow;
  IpAddr vtep;
};

constexpr size_t kStressNodes = 3000;  // enough for the indexes to grow and shrink through resizes

IpAddr ipv4(std::initializer_list<uint8_t> bytes) {
  IpAddr a;
  a.family = 4;
  std::copy(bytes.begin(), bytes.end(), a.bytes);
  return a;
}

std::vector<StressNode> stressNodes() {
  std::vector<StressNode> nodes(kStressNodes);
  for (size_t i = 0; i < kStressNodes; i++) {
    uint8_t hi = uint8_t(i >> 8), lo = uint8_t(i);
    nodes[i] = {std::string("n").append(std::to_string(i)),
                {ipv4({10, hi, lo, 0}), 24},
                {ipv4({10, hi, lo, 0}), 25},
                ipv4({100, 64, hi, lo})};
  }
  return nodes;
}

uint64_t nextRandom(uint64_t* s) {  // xorshift64: cheap, and the same run every time
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}

struct StressCounts {
  uint64_t lookups = 0;
  uint64_t wrong = 0;    // found a peer that is not the node owning the destination
  uint64_t missing = 0;  // node 0 (changed all the time, never removed) not found
};

// One worker's batches: a section looks up 64 destinations through both indexes
// and only then uses the peers found (names, counters), as the transmit loop
// queues datagrams and sends them at the end of its batch.
void stressRead(const std::atomic<const Fib*>& root, Quiescence* q,
                const std::vector<StressNode>& nodes, const std::atomic<bool>& stop, uint64_t seed,
                StressCounts* counts) {
  constexpr size_t kBatch = 64;
  struct Found {
    const StressNode* node;
    const Peer *route, *vtep;
  } found[kBatch];
  uint64_t rng = seed;
  while (!stop.load(std::memory_order_relaxed)) {
    readSection(q, root, [&](const Fib& fib) {
      for (size_t k = 0; k < kBatch; k++) {
        const StressNode& n = nodes[k == 0 ? 0 : nextRandom(&rng) % nodes.size()];
        uint8_t dst[4] = {10, n.wide.addr.bytes[1], n.wide.addr.bytes[2], 1};
        found[k] = {&n, fib.lookup(4, dst), fib.peerByAddress(n.vtep)};
        if (fib.isLocal(4, dst)) counts->wrong++;  // the local CIDR is outside every node's
      }
      for (const Found& f : found) {
        for (const Peer* p : {f.route, f.vtep})
          if (p && (p->name != f.node->name || p->counters->rxPackets.get() != 0)) counts->wrong++;
        if (f.node == &nodes[0] && !(f.route && f.vtep && sameNode(f.route, *f.vtep)))
          counts->missing++;
      }
      counts->lookups += 2 * kBatch;
    });
    std::this_thread::yield();  // as a worker goes back to poll: with 2 cores the writer gets a
                                // turn
  }
}

Peer stressPeer(const StressNode& n, uint64_t version) {
  Peer p;
  p.name = n.name;
  p.address = n.vtep;
  p.sockaddrLen = toSockaddr(n.vtep, uint16_t(8472 + version % 16), &p.sockaddr);
  p.mac[5] = uint8_t(version);
  return p;
}

// fibStress(ms) -> { updates, reclaims, lookups, wrong, missing }: two reader
// threads (the workers' protocol, qsbr.h) against this thread setting, replacing and
// removing random peers in bursts, each burst followed by synchronize and the free
// of what it retired. Growing and shrinking phases alternate so both indexes
// resize under the readers. With ASan, a reader touching freed memory aborts.
Napi::Value FibStress(const Napi::CallbackInfo& info) {
  auto until = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(info[0].As<Napi::Number>().Uint32Value());
  const std::vector<StressNode> nodes = stressNodes();
  Fib fib;
  std::atomic<const Fib*> root{&fib};
  fib.setPeer(stressPeer(nodes[0], 0), {nodes[0].wide});
  Quiescence q[2];
  StressCounts counts[2];
  std::atomic<bool> stop{false};
  std::thread readers[2];
  for (int r = 0; r < 2; r++)
    readers[r] = std::thread(stressRead, std::cref(root), &q[r], std::cref(nodes), std::cref(stop),
                             r + 1, &counts[r]);
  uint64_t rng = 0x9e3779b97f4a7c15ull, updates = 0, reclaims = 0;
  while (std::chrono::steady_clock::now() < until) {
    fib.setPeer(stressPeer(nodes[0], rng), {nodes[0].wide});
    for (uint64_t burst = 1 + nextRandom(&rng) % 16; burst; burst--, updates++) {
      bool growing =
          updates / 12000 % 2 == 0;  // long enough to swing the table between ~2,600 and ~400 peers
      uint64_t x = nextRandom(&rng);
      const StressNode& n = nodes[1 + x % (nodes.size() - 1)];
      if ((x >> 32) % 8 < (growing ? 7u : 1u))
        fib.setPeer(stressPeer(n, x >> 40), {x >> 36 & 1 ? n.wide : n.narrow});
      else
        fib.removePeer(n.name);
    }
    if (rng % 32 == 0) fib.setLocal({{ipv4({10, 255, 0, 0}), 16}});
    Retired retired = fib.takeRetired();
    synchronize(root, q, 2);
    reclaims++;
  }
  stop.store(true);
  for (std::thread& t : readers) t.join();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("updates", double(updates));
  o.Set("reclaims", double(reclaims));
  o.Set("lookups", double(counts[0].lookups + counts[1].lookups));
  o.Set("wrong", double(counts[0].wrong + counts[1].wrong));
  o.Set("missing", double(counts[0].missing + counts[1].missing));
  return o;
}

// The Table class as exported, to tell its objects from others (tests run in one environment).
Napi::FunctionReference* tableClass = nullptr;

}  // namespace

const Fib* testingFib(const Napi::Value& table) {
  if (tableClass == nullptr || !table.IsObject() ||
      !table.As<Napi::Object>().InstanceOf(tableClass->Value()))
    return nullptr;
  return &TableWrap::Unwrap(table.As<Napi::Object>())->fib();
}

void InitTestingFib(Napi::Env env, Napi::Object testing) {
  Napi::Function table = TableWrap::Define(env);
  tableClass = new Napi::FunctionReference(Napi::Persistent(table));
  env.AddCleanupHook([] {
    delete tableClass;
    tableClass = nullptr;
  });
  testing.Set("Table", table);
  testing.Set("fibStress", Napi::Function::New(env, FibStress, "fibStress"));
}

}  // namespace flatnet
