// WireGuard transport sessions (wg_session.h says what and why).
#include "wg_session.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <atomic>
#include <cstring>

#include "le.h"
#include "wg_admit.h"

namespace flatnet {

namespace {

// RFC 8439's 96-bit nonce as WireGuard fills it: 32 zero bits, then the counter little-endian.
void nonceOf(uint64_t counter, uint8_t nonce[12]) {
  std::memset(nonce, 0, 4);
  putLe64(nonce + 4, counter);
}

// One cipher context per thread and direction, set to ChaCha20-Poly1305 once: each message
// then sets only its nonce, and its key when the last message on that context was another
// session's, with no allocation and no provider lookup per packet: a thread mostly serves one
// session after another of the same peer, so the key set-up would repeat for the same key. A
// nonce alone resets the Poly1305 state as a key does (OpenSSL's chacha20_poly1305 init: the
// lengths, AAD and MAC state go with any new IV).
struct Contexts {
  EVP_CIPHER_CTX* seal = nullptr;
  EVP_CIPHER_CTX* open = nullptr;
  uint64_t sealKey = 0, openKey = 0;  // the session whose key each holds; 0: none
  Contexts() {
    seal = EVP_CIPHER_CTX_new();
    open = EVP_CIPHER_CTX_new();
    if (seal && EVP_EncryptInit_ex(seal, EVP_chacha20_poly1305(), nullptr, nullptr, nullptr) != 1)
      seal = (EVP_CIPHER_CTX_free(seal), nullptr);
    if (open && EVP_DecryptInit_ex(open, EVP_chacha20_poly1305(), nullptr, nullptr, nullptr) != 1)
      open = (EVP_CIPHER_CTX_free(open), nullptr);
  }
  ~Contexts() {
    EVP_CIPHER_CTX_free(seal);
    EVP_CIPHER_CTX_free(open);
  }
};
Contexts& contexts() {
  static thread_local Contexts c;
  return c;
}

std::atomic<uint64_t> nextSessionId{1};

// Sets ctx's nonce, and its key unless it holds this session's (*held: whose it holds), in the
// direction the context was made for (-1). A failed init leaves the context's key unknown.
bool initContext(EVP_CIPHER_CTX* ctx, uint64_t* held, uint64_t id, const uint8_t* key,
                 const uint8_t nonce[12]) {
  const uint8_t* k = *held == id ? nullptr : key;
  *held = 0;
  if (EVP_CipherInit_ex(ctx, nullptr, nullptr, k, nonce, -1) != 1) return false;
  *held = id;
  return true;
}

}  // namespace

bool ReplayWindow::check(uint64_t counter) const {
  if (counter >= kWgRejectAfterMessages) return false;
  if (counter >= next_) return true;
  if (next_ - 1 - counter >= kWindow) return false;
  return (blocks_[(counter / kBits) % kBlocks] & (uint64_t(1) << (counter % kBits))) == 0;
}

bool ReplayWindow::accept(uint64_t counter) {
  if (!check(counter)) return false;
  if (counter >= next_) {
    // Slide: clear the blocks after the old greatest's, up to the new one's, at most all.
    if (next_ != 0) {
      uint64_t oldBlock = (next_ - 1) / kBits;
      uint64_t distance = counter / kBits - oldBlock;
      if (distance > kBlocks) distance = kBlocks;
      for (uint64_t i = 1; i <= distance; i++) blocks_[(oldBlock + i) % kBlocks] = 0;
    }
    next_ = counter + 1;
  }
  blocks_[(counter / kBits) % kBlocks] |= uint64_t(1) << (counter % kBits);
  return true;
}

void ReplayWindow::saveState(uint8_t* out) const {
  static_assert(kStateBytes == 8 * (kBlocks + 1));
  putLe64(out, next_);
  for (uint64_t i = 0; i < kBlocks; i++) putLe64(out + 8 * (i + 1), blocks_[i]);
}

void ReplayWindow::loadState(const uint8_t* in) {
  next_ = le64(in);
  for (uint64_t i = 0; i < kBlocks; i++) blocks_[i] = le64(in + 8 * (i + 1));
}

void WgSession::saveState(uint8_t* out) {
  putLe64(out, uint64_t(createdNs_));
  putLe64(out + 8, sent());
  out[16] = confirmed_.load() ? 1 : 0;
  std::lock_guard<std::mutex> hold(replayLock_);
  replay_.saveState(out + 17);
}

void WgSession::loadState(const uint8_t* in) {
  createdNs_ = int64_t(le64(in));
  sendCounter_.store(le64(in + 8));
  confirmed_.store(in[16] != 0);
  std::lock_guard<std::mutex> hold(replayLock_);
  replay_.loadState(in + 17);
}

WgSession::WgSession(uint32_t localIndex, uint32_t remoteIndex, const WgSessionKeys& keys,
                     bool initiator, int64_t createdNs)
    : localIndex_(localIndex),
      remoteIndex_(remoteIndex),
      id_(nextSessionId.fetch_add(1, std::memory_order_relaxed)),
      keys_(keys),
      createdNs_(createdNs),
      confirmed_(initiator) {}

WgSession::~WgSession() { OPENSSL_cleanse(&keys_, sizeof keys_); }

size_t WgSession::messageLength(size_t len, size_t mtu) {
  // Whitepaper 5.4.6: zero padding to a multiple of 16, but not past the MTU.
  size_t padded = (len + 15) & ~size_t(15);
  if (padded > mtu) padded = mtu > len ? mtu : len;
  return kWgTransportHeader + padded + kWgTag;
}

size_t WgSession::seal(uint8_t* msg, size_t len, size_t mtu, int64_t nowNs) {
  if (!confirmed_.load(std::memory_order_acquire) || expired(nowNs)) return 0;
  uint64_t counter = sendCounter_.fetch_add(1, std::memory_order_relaxed);
  if (counter >= kWgRejectAfterMessages) return 0;
  Contexts& c = contexts();
  EVP_CIPHER_CTX* ctx = c.seal;
  if (ctx == nullptr) return 0;
  size_t total = messageLength(len, mtu);
  size_t padded = total - kWgTransportHeader - kWgTag;
  uint8_t* body = msg + kWgTransportHeader;
  std::memset(body + len, 0, padded - len);
  msg[0] = kWgTransportType;
  msg[1] = msg[2] = msg[3] = 0;
  putLe32(msg + 4, remoteIndex_);
  putLe64(msg + 8, counter);
  uint8_t nonce[12];
  nonceOf(counter, nonce);
  int n = 0, m = 0;
  if (!initContext(ctx, &c.sealKey, id_, keys_.send, nonce) ||
      EVP_EncryptUpdate(ctx, body, &n, body, int(padded)) != 1 ||
      EVP_EncryptFinal_ex(ctx, body + n, &m) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, int(kWgTag), body + padded) != 1)
    return 0;
  return total;
}

WgOpen WgSession::open(uint8_t* msg, size_t len, int64_t nowNs, size_t* packetLen) {
  if (len < kWgTransportHeader + kWgTag) return WgOpen::length;
  if (msg[0] != kWgTransportType || msg[1] || msg[2] || msg[3]) return WgOpen::type;
  if (wgReceiverIndex(msg) != localIndex_) return WgOpen::index;
  if (expired(nowNs)) return WgOpen::expired;
  uint64_t counter = le64(msg + 8);
  {
    std::lock_guard<std::mutex> hold(replayLock_);
    if (!replay_.check(counter)) return WgOpen::replay;
  }
  Contexts& c = contexts();
  EVP_CIPHER_CTX* ctx = c.open;
  if (ctx == nullptr) return WgOpen::decrypt;
  size_t sealed = len - kWgTransportHeader - kWgTag;
  uint8_t* body = msg + kWgTransportHeader;
  uint8_t nonce[12];
  nonceOf(counter, nonce);
  int n = 0, m = 0;
  if (!initContext(ctx, &c.openKey, id_, keys_.receive, nonce) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, int(kWgTag), body + sealed) != 1 ||
      EVP_DecryptUpdate(ctx, body, &n, body, int(sealed)) != 1 ||
      EVP_DecryptFinal_ex(ctx, body + n, &m) != 1)
    return WgOpen::decrypt;
  {
    std::lock_guard<std::mutex> hold(replayLock_);
    if (!replay_.accept(counter)) return WgOpen::replay;  // another thread took it meanwhile
  }
  confirmed_.store(true, std::memory_order_release);
  *packetLen = sealed;
  return WgOpen::ok;
}

const char* wgVerdictName(WgVerdict v) {
  switch (v) {
    case WgVerdict::packet:
      return "packet";
    case WgVerdict::keepalive:
      return "keepalive";
    case WgVerdict::handshake:
      return "handshake";
    case WgVerdict::badMessage:
      return "bad_message";
    case WgVerdict::unknownIndex:
      return "unknown_index";
    case WgVerdict::expired:
      return "expired";
    case WgVerdict::replay:
      return "replay";
    case WgVerdict::decrypt:
      return "decrypt";
    case WgVerdict::badInnerIp:
      return "bad_inner_ip";
    case WgVerdict::spoofedSource:
      return "spoofed_source";
    case WgVerdict::foreignDest:
      return "foreign_destination";
  }
  return "unknown";
}

}  // namespace flatnet
