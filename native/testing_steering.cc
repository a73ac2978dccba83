// exports.testing, steering part: which queue each of per-cpu's steering programs
// (the TUN's; the receive sockets' eBPF and classic fallback) picks, run for real
// (they need CAP_BPF / root) on a CPU the caller names, for a queue-to-CPU list the
// caller makes up, so a cpuset with gaps can be tested on any machine with two CPUs;
// and which CPUs get a per-cpu worker under a memory budget.
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "dataplane.h"
#include "packet.h"
#include "steering.h"
#include "testing.h"
#include "udp.h"

namespace flatnet {
namespace {

// Runs the calling thread on one CPU until it goes out of scope.
class OnCpu {
 public:
  explicit OnCpu(int cpu) {
    sched_getaffinity(0, sizeof saved_, &saved_);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ok_ = sched_setaffinity(0, sizeof one, &one) == 0;
  }
  ~OnCpu() { sched_setaffinity(0, sizeof saved_, &saved_); }
  bool ok() const { return ok_; }

 private:
  cpu_set_t saved_;
  bool ok_;
};

std::vector<int> cpuList(const Napi::Value& v) {
  std::vector<int> cpus;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++)
    cpus.push_back(a.Get(i).As<Napi::Number>().Int32Value());
  return cpus;
}

Napi::Value fail(Napi::Env env, const std::string& step, int err) {
  Napi::Error::New(env, step + ": " + std::strerror(err)).ThrowAsJavaScriptException();
  return env.Undefined();
}

// tunSteeringQueue(queueCpus, packet, cpu, repeat, moveBursts) -> the queue the TUN's
// program returns for an IP packet sent on CPU cpu repeat times (a fresh program each
// call: the first is its flow's first), the program built with moveBursts. packet may
// be a list of [packet, ms to wait before] sent in turn through one program: then the
// list of queues.
Napi::Value TunSteeringQueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<int> cpus = cpuList(info[0]);
  std::vector<std::pair<Napi::Buffer<uint8_t>, uint32_t>> sends;
  if (info[1].IsBuffer()) {
    sends.emplace_back(info[1].As<Napi::Buffer<uint8_t>>(), 0);
  } else {
    Napi::Array list = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Array send = list.Get(i).As<Napi::Array>();
      sends.emplace_back(send.Get(0u).As<Napi::Buffer<uint8_t>>(),
                         send.Get(1u).As<Napi::Number>().Uint32Value());
    }
  }
  int progFd;
  if (int err = loadCpuSteering(cpus, info[4].As<Napi::Boolean>(), &progFd))
    return fail(env, "load", err);
  std::vector<uint32_t> queues;
  int err = 0;
  {
    OnCpu on(info[2].As<Napi::Number>().Int32Value());
    if (!on.ok()) err = errno;
    for (size_t i = 0; !err && i < sends.size(); i++) {
      const Napi::Buffer<uint8_t>& pkt = sends[i].first;
      // The test run takes an Ethernet frame and hands the program what follows the
      // header, as the TUN hands it the IP packet.
      std::vector<uint8_t> frame(kEthHeaderLen, 0);
      frame[12] = (pkt.Data()[0] >> 4) == 6 ? 0x86 : 0x08;
      frame[13] = (pkt.Data()[0] >> 4) == 6 ? 0xdd : 0x00;
      frame.insert(frame.end(), pkt.Data(), pkt.Data() + pkt.Length());
      bpf_attr run{};
      run.test.prog_fd = uint32_t(progFd);
      run.test.data_in = reinterpret_cast<uintptr_t>(frame.data());
      run.test.data_size_in = uint32_t(frame.size());
      run.test.repeat = info[3].As<Napi::Number>().Uint32Value();
      usleep(sends[i].second * 1000);
      if (syscall(SYS_bpf, BPF_PROG_TEST_RUN, &run, sizeof run) < 0) err = errno;
      queues.push_back(run.test.retval);
    }
  }
  close(progFd);
  if (err) return fail(env, "BPF_PROG_TEST_RUN", err);
  if (info[1].IsBuffer()) return Napi::Number::New(env, queues[0]);
  Napi::Array out = Napi::Array::New(env, queues.size());
  for (uint32_t i = 0; i < queues.size(); i++) out.Set(i, Napi::Number::New(env, queues[i]));
  return out;
}

// socketSteering(program, queueCpus, sends) -> which socket of a reuseport group (one
// per queueCpus entry, on 127.0.0.1, steered by program "flow" or "cpu") gets each
// datagram sent from one socket, from the CPUs in sends ([cpu, ms to wait before,
// payload (a VXLAN datagram's, default one byte)] each): loopback receives a
// datagram on the sending CPU, as a veth does.
Napi::Value SocketSteering(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string program = info[0].As<Napi::String>();
  std::vector<int> cpus = cpuList(info[1]);
  Napi::Array sends = info[2].As<Napi::Array>();
  IpAddr lo{};
  lo.family = 4;
  lo.bytes[0] = 127;
  lo.bytes[3] = 1;
  std::vector<int> group;
  int out = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);  // one source port: one flow
  auto closeAll = [&] {
    for (int fd : group) close(fd);
    close(out);
  };
  uint16_t port = 0;
  const char* where = "";
  for (size_t q = 0; q < cpus.size(); q++) {
    bool gro;
    int fd = openUdpReceive(lo, port, false, true, &gro, &where);
    if (fd < 0) return closeAll(), fail(env, where, -fd);
    group.push_back(fd);
    if (port == 0) {
      sockaddr_in sa;
      socklen_t len = sizeof sa;
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
      port = ntohs(sa.sin_port);
    }
  }
  int err = program == "flow" ? attachFlowSteering(group, cpus) : steerByCpu(group[0], cpus);
  if (err) return closeAll(), fail(env, program, err);
  sockaddr_storage to;
  socklen_t toLen = toSockaddr(lo, port, &to);
  Napi::Array got = Napi::Array::New(env, sends.Length());
  for (uint32_t i = 0; i < sends.Length(); i++) {
    Napi::Array send = sends.Get(i).As<Napi::Array>();
    usleep(useconds_t(send.Get(1u).As<Napi::Number>().Int32Value() * 1000));
    {
      OnCpu on(send.Get(0u).As<Napi::Number>().Int32Value());
      Napi::Value payload = send.Get(2u);
      std::string data = payload.IsBuffer() ? std::string(payload.As<Napi::Buffer<char>>().Data(),
                                                          payload.As<Napi::Buffer<char>>().Length())
                                            : "x";
      if (!on.ok() ||
          sendto(out, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&to), toLen) < 0)
        err = errno;
    }
    if (err) return closeAll(), fail(env, "sendto", err);
    int socketIndex = -1;
    for (size_t q = 0; q < group.size(); q++) {
      char c;
      if (recv(group[q], &c, 1, MSG_DONTWAIT) == 1) socketIndex = int(q);
    }
    got.Set(i, socketIndex);
  }
  closeAll();
  return got;
}

// workerCpus(allowed: number[], budget, perWorker): the CPUs per-cpu workers get.
Napi::Value WorkerCpus(const Napi::CallbackInfo& info) {
  std::vector<int> cpus =
      workerCpus(cpuList(info[0]), size_t(info[1].As<Napi::Number>().Int64Value()),
                 size_t(info[2].As<Napi::Number>().Int64Value()));
  Napi::Array out = Napi::Array::New(info.Env(), cpus.size());
  for (uint32_t i = 0; i < cpus.size(); i++) out.Set(i, cpus[i]);
  return out;
}

}  // namespace

void InitTestingSteering(Napi::Env env, Napi::Object testing) {
  testing.Set("workerCpus", Napi::Function::New(env, WorkerCpus, "workerCpus"));
  testing.Set("tunSteeringQueue", Napi::Function::New(env, TunSteeringQueue, "tunSteeringQueue"));
  testing.Set("socketSteering", Napi::Function::New(env, SocketSteering, "socketSteering"));
}

}  // namespace flatnet
