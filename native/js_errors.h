// How the addon reports a system call's failure to JavaScript: an Error with its errno and the
// step, so src/ can tell EADDRINUSE from EPERM without parsing messages.
#pragma once
#include <napi.h>

#include <cstring>
#include <string>

namespace flatnet {

inline void throwErrno(Napi::Env env, int err, const char* where) {
  Napi::Error e = Napi::Error::New(env, std::string(where) + ": " + std::strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("step", Napi::String::New(env, where));
  e.ThrowAsJavaScriptException();
}

}  // namespace flatnet
