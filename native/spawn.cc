// posix_spawn with three pipes, and a non-blocking reap (spawn.h says why).
#include "spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "js_errors.h"

extern char** environ;

namespace flatnet {

namespace {

void closeAll(int (&fds)[3][2]) {
  for (auto& p : fds)
    for (int& fd : p)
      if (fd >= 0) close(fd), fd = -1;
}

Napi::Value SpawnPiped(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString() || !info[1].IsArray()) {
    Napi::TypeError::New(env, "spawnPiped(file: string, args: string[])")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string file = info[0].As<Napi::String>();
  auto list = info[1].As<Napi::Array>();
  std::vector<std::string> args{file};
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsString()) {
      Napi::TypeError::New(env, "spawnPiped: every argument must be a string")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    args.push_back(v.As<Napi::String>());
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // [i][0] is the read end, [i][1] the write end; the child gets stdin's read end and
  // stdout's and stderr's write ends. O_CLOEXEC: no other child inherits them.
  int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  for (auto& p : fds) {
    if (pipe2(p, O_CLOEXEC) != 0) {
      int err = errno;
      closeAll(fds);
      throwErrno(env, err, "pipe2");
      return env.Undefined();
    }
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[0][0], 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1][1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[2][1], 2);
  // The child starts as a fresh process would: Node ignores SIGPIPE and the addon's threads
  // block signals; neither should reach nft.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int err = posix_spawnp(&pid, file.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(fds[0][0]), fds[0][0] = -1;
  close(fds[1][1]), fds[1][1] = -1;
  close(fds[2][1]), fds[2][1] = -1;
  if (err != 0) {
    closeAll(fds);
    Napi::Error e = Napi::Error::New(env, "spawn " + file + ": " + std::strerror(err));
    e.Set("errno", Napi::Number::New(env, err));
    if (err == ENOENT) e.Set("code", Napi::String::New(env, "ENOENT"));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int ours[3] = {fds[0][1], fds[1][0], fds[2][0]};
  for (int fd : ours) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, pid));
  out.Set("stdin", Napi::Number::New(env, ours[0]));
  out.Set("stdout", Napi::Number::New(env, ours[1]));
  out.Set("stderr", Napi::Number::New(env, ours[2]));
  return out;
}

Napi::Value Reap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "reap(pid: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  int status = 0;
  pid_t r = waitpid(pid, &status, WNOHANG);
  if (r == 0) return env.Undefined();
  if (r < 0) {
    throwErrno(env, errno, "waitpid");
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  if (WIFEXITED(status))
    out.Set("code", Napi::Number::New(env, WEXITSTATUS(status)));
  else
    out.Set("signal", Napi::Number::New(env, WTERMSIG(status)));
  return out;
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnPiped", Napi::Function::New(env, SpawnPiped));
  exports.Set("reap", Napi::Function::New(env, Reap));
}

}  // namespace flatnet
