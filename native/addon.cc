// The N-API surface: a Dataplane object for the daemon, and pure packet functions
// for tests (testing.cc). Arguments arrive validated by src/native.ts; this layer
// only converts them and reports system errors with their errno.
#include <napi.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "blake2s_mac.h"
#include "dataplane.h"
#include "handover.h"
#include "js_errors.h"
#include "js_table.h"
#include "nflog_js.h"
#include "prober_js.h"
#include "spawn.h"
#include "wg_js.h"
#ifdef FLATNET_TESTING
#include "testing.h"  // the test surface: only in flatnet_testing.node (binding.gyp)
#endif
#include "worker.h"

namespace flatnet {
namespace {

// listenHandover(path) -> fd: where a successor waits for its predecessor's descriptors.
Napi::Value ListenHandover(const Napi::CallbackInfo& info) {
  const char* where = "";
  int fd = listenHandover(info[0].As<Napi::String>().Utf8Value(), &where);
  if (fd < 0) return throwErrno(info.Env(), -fd, where), info.Env().Undefined();
  return Napi::Number::New(info.Env(), fd);
}

// receiveDescriptors(listenFd, timeoutMs) -> fd[]: blocks at most timeoutMs, once per
// daemon life, after the predecessor has said it sent them.
Napi::Value ReceiveDescriptors(const Napi::CallbackInfo& info) {
  std::vector<int> fds;
  const char* where = "";
  int err = receiveDescriptors(info[0].As<Napi::Number>().Int32Value(),
                               info[1].As<Napi::Number>().Int32Value(), &fds, &where);
  if (err) return throwErrno(info.Env(), err, where), info.Env().Undefined();
  Napi::Array out = Napi::Array::New(info.Env());
  for (size_t i = 0; i < fds.size(); i++) out.Set(uint32_t(i), fds[i]);
  return out;
}

// closeDescriptor(fd): for received descriptors no data plane took.
Napi::Value CloseDescriptor(const Napi::CallbackInfo& info) {
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// peerUid(fd) -> the uid of the process at the other end of a unix socket (SO_PEERCRED,
// unix(7)), which Node does not expose; -1 when the socket has none.
Napi::Value PeerUid(const Napi::CallbackInfo& info) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(info[0].As<Napi::Number>().Int32Value(), SOL_SOCKET, SO_PEERCRED, &cred, &len) !=
      0)
    return Napi::Number::New(info.Env(), -1);
  return Napi::Number::New(info.Env(), cred.uid);
}

class DataplaneWrap : public Napi::ObjectWrap<DataplaneWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Dataplane",
                       {InstanceMethod("start", &DataplaneWrap::Start),
                        InstanceMethod("stop", &DataplaneWrap::Stop),
                        InstanceMethod("handoverState", &DataplaneWrap::HandoverState),
                        InstanceMethod("handTo", &DataplaneWrap::HandTo),
                        InstanceMethod("handOff", &DataplaneWrap::HandOff),
                        InstanceMethod("setTable", &DataplaneWrap::SetTable),
                        InstanceMethod("updatePeers", &DataplaneWrap::UpdatePeers),
                        InstanceMethod("stats", &DataplaneWrap::Stats),
                        InstanceMethod("info", &DataplaneWrap::Info),
                        InstanceMethod("reopenTun", &DataplaneWrap::ReopenTun),
                        InstanceMethod("wgInstall", &DataplaneWrap::Wg<wgInstall>),
                        InstanceMethod("wgRetire", &DataplaneWrap::Wg<wgRetire>),
                        InstanceMethod("wgSend", &DataplaneWrap::Wg<wgSend>),
                        InstanceMethod("wgKeepalive", &DataplaneWrap::Wg<wgKeepalive>),
                        InstanceMethod("wgPoll", &DataplaneWrap::Wg<wgPoll>),
                        InstanceMethod("wgHand", &DataplaneWrap::Wg<wgHand>),
                        InstanceMethod("wgHanded", &DataplaneWrap::Wg<wgHanded>)});
  }

  explicit DataplaneWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DataplaneWrap>(info) {
    Napi::Object o = info[0].As<Napi::Object>();
    DataplaneOptions opt;
    opt.tunName = o.Get("tunName").As<Napi::String>().Utf8Value();
    opt.offloads = o.Get("offloads").As<Napi::Boolean>().Value();
    opt.underlay = addrFromJs(o.Get("underlayAddress"));
    opt.port = uint16_t(o.Get("port").As<Napi::Number>().Uint32Value());
    opt.vtep.vni = o.Get("vni").As<Napi::Number>().Uint32Value();
    macFromJs(o.Get("vtepMAC"), opt.vtep.mac);
    opt.sendSockets = int(o.Get("sendSockets").As<Napi::Number>().Int32Value());
    opt.batch = int(o.Get("batch").As<Napi::Number>().Int32Value());
    opt.busyPollMicros = int(o.Get("busyPollMicros").As<Napi::Number>().Int32Value());
    opt.memoryBudget = size_t(o.Get("memoryBudget").As<Napi::Number>().Int64Value());
    if (o.Has("mtu")) opt.mtu = size_t(o.Get("mtu").As<Napi::Number>().Uint32Value());
    if (o.Has("wgPort")) opt.wgPort = uint16_t(o.Get("wgPort").As<Napi::Number>().Uint32Value());
    std::string workers = o.Get("workers").ToString();
    opt.workers = workers == "per-cpu" ? DataplaneOptions::Workers::perCpu
                  : workers == "auto"  ? DataplaneOptions::Workers::automatic
                                       : DataplaneOptions::Workers::pipeline;
    const char* where = "";
    Napi::Value adopt = o.Get("adopt");
    int err = adopt.IsObject() ? dp_.adopt(opt, adoptedFromJs(adopt.As<Napi::Object>()), &where)
                               : dp_.open(opt, &where);
    if (err) throwErrno(info.Env(), err, where);
  }

 private:
  template <Napi::Value (*Fn)(Dataplane&, const Napi::CallbackInfo&)>
  Napi::Value Wg(const Napi::CallbackInfo& info) {
    return Fn(dp_, info);
  }
  Napi::Value Start(const Napi::CallbackInfo& info) {
    dp_.start();
    return info.Env().Undefined();
  }
  Napi::Value ReopenTun(const Napi::CallbackInfo& info) {
    const char* where = "";
    if (int err = dp_.reopenTun(&where)) throwErrno(info.Env(), err, where);
    return info.Env().Undefined();
  }
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    dp_.stop();
    return info.Env().Undefined();
  }
  // handOff(passSessions) -> 0 or an errno: stops the threads and lets the successor's start
  // (EPIPE: it is gone, and start() resumes these).
  Napi::Value HandOff(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), dp_.handOff(info[0].ToBoolean().Value()));
  }
  // What a successor passes back as options.adopt, less the descriptors
  // (handTo passes those: TUN queues, then receive sockets, then the baton).
  Napi::Value HandoverState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Adopted a = dp_.handoverState();
    Napi::Object o = Napi::Object::New(env);
    Napi::Array cpus = Napi::Array::New(env);
    for (size_t i = 0; i < a.queueCpus.size(); i++) cpus.Set(uint32_t(i), a.queueCpus[i]);
    o.Set("queueCpus", cpus);
    o.Set("queues", a.tunFds.size());
    o.Set("wgQueues", a.wgFds.size());
    o.Set("tunOffloads", a.tunOffloads);
    o.Set("tunSteeringErrno", a.tunSteeringErrno);
    o.Set("groOn", a.groOn);
    o.Set("perCpuErrno", a.perCpuErrno);
    o.Set("socketSteering", a.socketSteering);
    o.Set("socketSteeringErrno", a.socketSteeringErrno);
    return o;
  }
  // handTo(path): passes the TUN queues, the receive sockets (VXLAN's, then WireGuard's) and the
  // baton to the successor listening there; this data plane keeps its own copies and runs on.
  Napi::Value HandTo(const Napi::CallbackInfo& info) {
    const char* where = "";
    if (int err = dp_.handTo(info[0].As<Napi::String>().Utf8Value(), &where))
      throwErrno(info.Env(), err, where);
    return info.Env().Undefined();
  }

  // options.adopt: handoverState() plus tun, rx and baton, the descriptors received.
  static Adopted adoptedFromJs(Napi::Object o) {
    Adopted a;
    auto ints = [](Napi::Value v) {
      Napi::Array arr = v.As<Napi::Array>();
      std::vector<int> out;
      for (uint32_t i = 0; i < arr.Length(); i++)
        out.push_back(arr.Get(i).As<Napi::Number>().Int32Value());
      return out;
    };
    a.tunFds = ints(o.Get("tun"));
    a.rxFds = ints(o.Get("rx"));
    if (o.Has("wg")) a.wgFds = ints(o.Get("wg"));
    a.queueCpus = ints(o.Get("queueCpus"));
    a.tunOffloads = o.Get("tunOffloads").As<Napi::Number>().Uint32Value();
    a.tunSteeringErrno = o.Get("tunSteeringErrno").As<Napi::Number>().Int32Value();
    a.groOn = o.Get("groOn").As<Napi::Boolean>().Value();
    a.perCpuErrno = o.Get("perCpuErrno").As<Napi::Number>().Int32Value();
    a.socketSteering = o.Get("socketSteering").As<Napi::String>().Utf8Value();
    a.socketSteeringErrno = o.Get("socketSteeringErrno").As<Napi::Number>().Int32Value();
    a.batonFd = o.Get("baton").As<Napi::Number>().Int32Value();
    return a;
  }

  // setTable({ local: Prefix[], peers: [{ name, address, port, mac, cidrs: Prefix[] }] }):
  // the whole table (first install, restore); unchanged peers keep their counters.
  Napi::Value SetTable(const Napi::CallbackInfo& info) {
    setTableFromJs(&dp_.table(), info[0].As<Napi::Object>());
    dp_.reclaim();
    return info.Env().Undefined();
  }
  // updatePeers({ set: Peer[], remove: string[] }): only what changed, so a change
  // costs the same whatever the number of peers.
  Napi::Value UpdatePeers(const Napi::CallbackInfo& info) {
    updatePeersFromJs(&dp_.table(), info[0].As<Napi::Object>());
    dp_.reclaim();
    return info.Env().Undefined();
  }

  // One direction's counters, summed over the queues.
  Napi::Object workerStats(Napi::Env env, WorkerCounters& (Dataplane::*counters)(int)) {
    double packets = 0, bytes = 0, batches = 0, syscalls = 0, coalesced = 0, partialChecksums = 0;
    for (int q = 0; q < dp_.queues(); q++) {
      const WorkerCounters& c = (dp_.*counters)(q);
      packets += double(c.packets.get());
      bytes += double(c.bytes.get());
      batches += double(c.batches.get());
      syscalls += double(c.syscalls.get());
      coalesced += double(c.coalesced.get());
      partialChecksums += double(c.partialChecksums.get());
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("packets", packets);
    o.Set("bytes", bytes);
    o.Set("batches", batches);
    o.Set("syscalls", syscalls);
    o.Set("coalesced", coalesced);
    o.Set("partialChecksums", partialChecksums);
    return o;
  }

  // stats(maxPeers = all): the peers' counters for the maxPeers busiest (bytes both ways),
  // busiest first. An object per peer is most of the call's cost at 5,000 peers; the
  // busiest few are picked here, before any is built.
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t maxPeers = info.Length() > 0 && info[0].IsNumber()
                          ? size_t(info[0].As<Napi::Number>().Uint32Value())
                          : SIZE_MAX;
    Napi::Object o = Napi::Object::New(env);
    o.Set("tx", workerStats(env, &Dataplane::txCounters));
    o.Set("rx", workerStats(env, &Dataplane::rxCounters));
    Napi::Object drops = Napi::Object::New(env);
    for (int i = 0; i < kDropCount; i++) {
      double n = 0;
      for (int q = 0; q < dp_.queues(); q++)
        n += double(dp_.txCounters(q).drops[i].get() + dp_.rxCounters(q).drops[i].get());
      drops.Set(kDropNames[i], n);
    }
    o.Set("drops", drops);
    // Packets per queue (one entry unless per-CPU): where the steering put the traffic.
    Napi::Array queues = Napi::Array::New(env);
    for (int q = 0; q < dp_.queues(); q++) {
      Napi::Object qo = Napi::Object::New(env);
      qo.Set("txPackets", double(dp_.txCounters(q).packets.get()));
      qo.Set("rxPackets", double(dp_.rxCounters(q).packets.get()));
      queues.Set(uint32_t(q), qo);
    }
    o.Set("queues", queues);
    struct Row {
      const Peer* peer;
      uint64_t bytes;
    };
    std::vector<Row> rows;
    dp_.table().forEachPeer([&](const Peer& p) {
      rows.push_back({&p, p.counters->txBytes.get() + p.counters->rxBytes.get()});
    });
    size_t n = std::min(maxPeers, rows.size());
    std::partial_sort(rows.begin(), rows.begin() + n, rows.end(), [](const Row& a, const Row& b) {
      return a.bytes != b.bytes ? a.bytes > b.bytes : a.peer->name < b.peer->name;
    });
    // The property names made once, not once per peer.
    Napi::String name = Napi::String::New(env, "name"),
                 txPackets = Napi::String::New(env, "txPackets"),
                 txBytes = Napi::String::New(env, "txBytes"),
                 rxPackets = Napi::String::New(env, "rxPackets"),
                 rxBytes = Napi::String::New(env, "rxBytes");
    Napi::Array peers = Napi::Array::New(env, n);
    for (size_t i = 0; i < n; i++) {
      const Peer& p = *rows[i].peer;
      Napi::Object po = Napi::Object::New(env);
      po.Set(name, p.name);
      po.Set(txPackets, double(p.counters->txPackets.get()));
      po.Set(txBytes, double(p.counters->txBytes.get()));
      po.Set(rxPackets, double(p.counters->rxPackets.get()));
      po.Set(rxBytes, double(p.counters->rxBytes.get()));
      peers.Set(uint32_t(i), po);
    }
    o.Set("peers", peers);
    return o;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const TunDevice& tun = dp_.tun();
    Napi::Object o = Napi::Object::New(env);
    o.Set("tunName", tun.name);
    o.Set("vnetHdr", tun.vnetHdr);
    o.Set("tunCsum", bool(tun.offloads & kTunCsum));
    o.Set("tunTso", bool(tun.offloads & kTunTso4));
    o.Set("tunUso", bool(tun.offloads & kTunUso4));
    o.Set("udpGro", dp_.udpGroOn());
    o.Set("udpGso", dp_.udpGsoOn());
    o.Set("udpGsoErrno", dp_.udpGsoErrno());
    o.Set("tunError", dp_.tunError());
    o.Set("queues", dp_.queues());
    o.Set("workers", dp_.perCpu() ? "per-cpu" : "pipeline");
    o.Set("perCpuErrno", dp_.perCpuErrno());
    o.Set("allowedCpus", dp_.allowedCpuCount());
    o.Set("packetMemoryPerWorker", double(packetMemoryPerWorker(dp_.options())));
    // Per-CPU workers: how the sockets steer, and why the TUN or the sockets do not
    // steer as per-cpu needs (0: they do).
    o.Set("tunSteeringErrno", tun.steeringErrno);
    o.Set("socketSteering", dp_.socketSteering());
    o.Set("socketSteeringErrno", dp_.socketSteeringErrno());
    o.Set("takingOver", dp_.takingOver());  // threads waiting for the predecessor's to stop
    return o;
  }

  Dataplane dp_;
};

}  // namespace
}  // namespace flatnet

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Dataplane", flatnet::DataplaneWrap::Define(env));
  exports.Set("listenHandover", Napi::Function::New(env, flatnet::ListenHandover));
  exports.Set("receiveDescriptors", Napi::Function::New(env, flatnet::ReceiveDescriptors));
  exports.Set("closeDescriptor", Napi::Function::New(env, flatnet::CloseDescriptor));
  exports.Set("peerUid", Napi::Function::New(env, flatnet::PeerUid));
  flatnet::InitNflog(env, exports);
  flatnet::InitProber(env, exports);
  flatnet::InitBlake2sMac(env, exports);
  flatnet::InitSpawn(env, exports);
#ifdef FLATNET_TESTING
  flatnet::InitTesting(env, exports);
#endif
  return exports;
}

NODE_API_MODULE(flatnet, Init)
