// flatnet-cni: the chained CNI plugin that runs last in flatnet's conflist. It decides
// nothing: it passes the runtime's request (the CNI_* variables and the network config
// on stdin, prevResult included) to the node's daemon over a unix socket and relays the
// answer (exit status, then stdout). The daemon binds the pod's addresses to its bridge
// port and refuses ADD until its policy table is in, so the binary can stay the same
// across daemon versions and run on hosts without Node (linked statically).
//
// Wire: request = "NAME=value\0" for each CNI_* variable, "\0", then stdin; the client
// then shuts down its write side. Reply = one status byte ('0' or '1'), then stdout.
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr size_t kMaxInput = 1 << 20;  // a network config with prevResult is a few KB
constexpr const char *kDefaultSocket = "/run/flatnet/cni.sock";
constexpr const char *kVars[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME",
                                 "CNI_ARGS"};

// A CNI error result (CNI spec, "Error"): code 11 is "try again later".
int fail(int code, const std::string &msg, const std::string &details) {
  auto quote = [](const std::string &s) {
    std::string out;
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      if (static_cast<unsigned char>(c) < 0x20) continue;
      out += c;
    }
    return out;
  };
  std::printf("{\"cniVersion\":\"1.0.0\",\"code\":%d,\"msg\":\"%s\",\"details\":\"%s\"}\n", code,
              quote(msg).c_str(), quote(details).c_str());
  return 1;
}

bool readAll(int fd, std::string &out, size_t max) {
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (out.size() + static_cast<size_t>(n) > max) return false;
    out.append(buf, static_cast<size_t>(n));
  }
}

bool writeAll(int fd, const std::string &data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

// The daemon names its socket in the plugin's config as "socket":"<path>" (it writes the
// conflist; libcni passes it on re-marshalled by Go's encoding/json, which puts no space
// there and escapes nothing in a path). A path with escapes is refused, not guessed at.
std::string socketPath(const std::string &config) {
  const std::string key = "\"socket\":\"";
  size_t at = config.find(key);
  if (at == std::string::npos) return kDefaultSocket;
  size_t start = at + key.size();
  size_t end = config.find('"', start);
  if (end == std::string::npos) return "";
  std::string path = config.substr(start, end - start);
  if (path.find('\\') != std::string::npos) return "";
  return path;
}

}  // namespace

int main() {
  const char *command = std::getenv("CNI_COMMAND");
  std::string cmd = command ? command : "";
  if (cmd == "VERSION") {
    std::printf("{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}\n");
    return 0;
  }
  std::string config;
  if (!readAll(STDIN_FILENO, config, kMaxInput))
    return fail(4, "cannot read the network configuration", "stdin");
  std::string path = socketPath(config);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return fail(7, "bad \"socket\" in the flatnet-cni config", path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
    // DEL must succeed when there is nothing left to undo (CNI spec): the daemon drops
    // bindings of ports that are gone. ADD and CHECK fail closed: no daemon, no pod.
    if (cmd == "DEL") return 0;
    return fail(11, "flatnet is not running on this node: the pod waits until it is",
                "connect " + path + ": " + std::strerror(errno));
  }
  timeval timeout{60,
                  0};  // the daemon answers in milliseconds; a hung one must not hold the runtime
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);

  std::string request;
  for (const char *name : kVars) {
    const char *value = std::getenv(name);
    if (!value) continue;
    request += name;
    request += '=';
    request += value;
    request += '\0';
  }
  request += '\0';
  request += config;
  std::string reply;
  if (!writeAll(fd, request) || shutdown(fd, SHUT_WR) != 0 || !readAll(fd, reply, kMaxInput) ||
      reply.empty()) {
    int err = errno;
    close(fd);
    if (cmd == "DEL") return 0;
    return fail(11, "no answer from the flatnet daemon",
                path + ": " + (err ? std::strerror(err) : "connection closed"));
  }
  close(fd);
  std::fwrite(reply.data() + 1, 1, reply.size() - 1, stdout);
  return reply[0] == '0' ? 0 : 1;
}
