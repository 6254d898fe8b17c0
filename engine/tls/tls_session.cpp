// TlsSession implementation: the memory-BIO pattern of platform-notes §2.1, and the translation of
// OpenSSL's verdicts into "which check failed".
#include "engine/tls/tls_session.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace ringmail::tls {

std::string_view failure_kind_name(FailureKind k) {
  static constexpr std::array<std::string_view, 7> kNames{
      "no failure",
      "no certificate",
      "certificate chain invalid",
      "certificate name mismatch",
      "TLS handshake failed",
      "connection closed during the TLS handshake",
      "TLS protocol error",
  };
  static_assert(kNames.size() == static_cast<size_t>(FailureKind::kProtocol) + 1, "one name per kind");
  return kNames[static_cast<size_t>(k)];
}

// The session's own BIO (one object for both directions; platform-notes §2.1 mentions the idea):
// OpenSSL reads ciphertext straight from the chunk the ring received and appends its records to
// the session's output string. Memory BIOs copied every byte once more each way and zero-filled
// every buffer they grew into (BUF_MEM_grow_clean); under a TLS relay load that showed up next to
// the cipher itself.
struct TlsSession::Io {
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringmail session");
      if (made != nullptr) {
        BIO_meth_set_write(made, &Io::write);
        BIO_meth_set_read(made, &Io::read);
        BIO_meth_set_ctrl(made, &Io::ctrl);
        BIO_meth_set_create(made, [](BIO* b) {
          BIO_set_init(b, 1);
          return 1;
        });
      }
      return made;
    }();  // created once per process and shared by every thread (OpenSSL caps BIO type indices)
    return m;
  }
  static TlsSession* session(BIO* b) { return static_cast<TlsSession*>(BIO_get_data(b)); }
  static int read(BIO* b, char* out, int len) {
    TlsSession* s = session(b);
    BIO_clear_retry_flags(b);
    if (s == nullptr || len <= 0) return 0;
    if (s->in_.empty()) {
      if (s->eof_fed_) return 0;  // the peer closed: OpenSSL sees EOF
      BIO_set_retry_read(b);      // WANT_READ until more arrives
      return -1;
    }
    size_t n = std::min(s->in_.size(), static_cast<size_t>(len));
    std::memcpy(out, s->in_.data(), n);
    s->in_.remove_prefix(n);
    return static_cast<int>(n);
  }
  static int write(BIO* b, const char* data, int len) {
    TlsSession* s = session(b);
    BIO_clear_retry_flags(b);
    if (s == nullptr || len < 0) return -1;
    s->out_.append(data, static_cast<size_t>(len));  // never short: output is queued in memory
    return len;
  }
  static long ctrl(BIO* b, int cmd, long, void*) {
    TlsSession* s = session(b);
    switch (cmd) {
      case BIO_CTRL_FLUSH: return 1;
      case BIO_CTRL_PENDING: return s ? static_cast<long>(s->in_.size()) : 0;
      case BIO_CTRL_WPENDING: return s ? static_cast<long>(s->out_.size()) : 0;
      case BIO_CTRL_EOF: return s && s->in_.empty() && s->eof_fed_ ? 1 : 0;
      default: return 0;  // no push/pop, no dup, no kTLS
    }
  }
};

TlsSession::TlsSession(TlsContext& context) : context_(context) {}

TlsSession::~TlsSession() {
  // Without a prior close() OpenSSL marks the session non-resumable: right for broken sessions.
  if (ssl_ != nullptr) SSL_free(ssl_);
}

Status TlsSession::start_common() {
  if (ssl_ != nullptr) return make_error("TLS session already started");
  ERR_clear_error();
  BIO_METHOD* method = Io::method();
  if (method == nullptr) return make_error("BIO_meth_new: {}", take_openssl_errors("out of memory"));
  ssl_ = SSL_new(context_.native());
  if (ssl_ == nullptr) return make_error("SSL_new: {}", take_openssl_errors("out of memory"));
  BIO* bio = BIO_new(method);
  if (bio == nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
    return make_error("BIO_new: {}", take_openssl_errors("out of memory"));
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one object both ways; the SSL owns its one reference
  SSL_set_app_data(ssl_, this);
  state_ = TlsState::kHandshaking;
  return {};
}

Status TlsSession::start_client(const ClientParams& params) {
  if (context_.role() != Role::kClient) return make_error("start_client on a server TLS context");
  if (params.verify) {
    if (auto t = context_.ensure_trust_store(); !t) return t;
  }
  if (auto s = start_common(); !s) return s;
  if (!params.sni.empty() && SSL_set_tlsext_host_name(ssl_, std::string(params.sni).c_str()) != 1)
    return make_error("SNI {}: {}", params.sni, take_openssl_errors("refused"));
  verify_ = params.verify;
  if (verify_) {
    if (params.verify_name.empty()) return make_error("TLS verification needs a name to verify");
    // X509_VERIFY_PARAM_set1_host underneath: the handshake fails on a chain or name problem, and
    // SSL_get_verify_result says which.
    SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl_, std::string(params.verify_name).c_str()) != 1)
      return make_error("TLS verify name {}: {}", params.verify_name, take_openssl_errors("refused"));
    SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_set_verify(ssl_, SSL_VERIFY_NONE, nullptr);
  }
  cache_key_.assign(params.cache_key);
  if (!cache_key_.empty()) {
    if (SSL_SESSION* cached = context_.sessions().find(cache_key_)) SSL_set_session(ssl_, cached);
  }
  SSL_set_connect_state(ssl_);
  std::string none;
  read(none);  // produces the ClientHello (WANT_READ)
  return {};
}

Status TlsSession::start_server() {
  if (context_.role() != Role::kServer) return make_error("start_server on a client TLS context");
  if (auto s = start_common(); !s) return s;
  SSL_set_accept_state(ssl_);
  return {};
}

void TlsSession::feed(std::string_view ciphertext) {
  if (ssl_ == nullptr || ciphertext.empty()) return;
  held_in_.append(ciphertext);
}

void TlsSession::feed_eof() {
  if (ssl_ == nullptr) return;
  eof_fed_ = true;  // OpenSSL sees the EOF once the bytes before it are read
}

TlsState TlsSession::read_input(std::string_view ciphertext, std::string& plain) {
  if (ssl_ == nullptr || !held_in_.empty()) {
    feed(ciphertext);
    return read(plain);
  }
  // Nothing held back: OpenSSL reads the caller's chunk in place; only what it leaves is kept.
  in_ = ciphertext;
  TlsState st = advance(plain);
  held_in_.assign(in_);
  in_ = {};
  return st;
}

TlsState TlsSession::read(std::string& plain) {
  in_ = held_in_;
  TlsState st = advance(plain);
  held_in_.erase(0, held_in_.size() - in_.size());
  in_ = {};
  return st;
}

void TlsSession::fail(FailureKind kind, std::string text) {
  state_ = TlsState::kFailed;
  failure_ = kind;
  failure_text_ = fmt::format("{}: {}", failure_kind_name(kind), text);
  ERR_clear_error();
  if (!cache_key_.empty()) context_.sessions().erase(cache_key_);  // never resume a broken hop
}

void TlsSession::classify_handshake_failure() {
  long vr = SSL_get_verify_result(ssl_);
  if (verify_ && vr != X509_V_OK) {
    FailureKind kind = vr == X509_V_ERR_HOSTNAME_MISMATCH ? FailureKind::kNameMismatch : FailureKind::kChainInvalid;
    std::string detail = X509_verify_cert_error_string(vr);
    if (kind == FailureKind::kNameMismatch) {
      X509_VERIFY_PARAM* p = SSL_get0_param(ssl_);
      const char* want = X509_VERIFY_PARAM_get0_host(p, 0);
      detail = fmt::format("the certificate ({}) is not valid for {}", peer_subject(), want ? want : "?");
    } else if (peer_has_certificate()) {
      detail += fmt::format(" ({})", peer_subject());
    }
    return fail(kind, detail);
  }
  fail(FailureKind::kHandshake, take_openssl_errors("no detail from OpenSSL"));
}

TlsState TlsSession::advance(std::string& plain) {
  if (state_ == TlsState::kHandshaking) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return state_;
      if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
        fail(FailureKind::kClosed, "the peer closed the connection");
        return state_;
      }
      classify_handshake_failure();
      return state_;
    }
    if (verify_ && !peer_has_certificate()) {
      fail(FailureKind::kNoCertificate, "the server presented no certificate");
      return state_;
    }
    state_ = TlsState::kEstablished;
  }
  if (state_ != TlsState::kEstablished) return state_;
  // Records are decrypted into a per-thread scratch buffer and appended: growing `plain` by a whole
  // record per call would zero 16 KiB each time (it showed as the top user-space cost under load).
  thread_local std::array<char, 16 * 1024> scratch;  // one TLS record at most
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(ssl_, scratch.data(), static_cast<int>(scratch.size()));
    if (n > 0) {
      plain.append(scratch.data(), static_cast<size_t>(n));
      // Nothing decrypted left in OpenSSL and no input left: the next SSL_read could only say
      // WANT_READ (after feed_eof it goes on, so that the EOF is seen).
      if (in_.empty() && SSL_pending(ssl_) == 0 && !eof_fed_) return state_;
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return state_;
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
      state_ = TlsState::kClosed;  // close_notify, or EOF (IGNORE_UNEXPECTED_EOF maps it here)
      return state_;
    }
    fail(FailureKind::kProtocol, take_openssl_errors("SSL_read failed"));
    return state_;
  }
}

Status TlsSession::write(std::string_view plain) {
  if (state_ != TlsState::kEstablished) return make_error("TLS write before the handshake finished");
  while (!plain.empty()) {
    size_t written = 0;
    ERR_clear_error();
    if (SSL_write_ex(ssl_, plain.data(), plain.size(), &written) != 1) {
      fail(FailureKind::kProtocol, take_openssl_errors("SSL_write failed"));
      return make_error("{}", failure_text_);
    }
    plain.remove_prefix(written);
  }
  return {};
}

void TlsSession::close() {
  if (ssl_ == nullptr || clean_) return;
  if (state_ != TlsState::kEstablished && state_ != TlsState::kClosed) return;  // broken: not resumable
  clean_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // queues close_notify into our output; we do not wait for the peer's
  ERR_clear_error();
}

bool TlsSession::has_output() const { return !out_.empty(); }

void TlsSession::take_output(std::string& out) {
  if (out_.empty()) return;
  if (out.empty()) {
    out.swap(out_);  // no copy; the caller's spare capacity comes back for the next records
  } else {
    out.append(out_);
  }
  out_.clear();
}

void TlsSession::release_buffers() {
  if (ssl_ == nullptr || state_ != TlsState::kEstablished) return;
  SSL_free_buffers(ssl_);  // the record buffers; refused (harmlessly) while a record is half read
  if (out_.empty()) std::string().swap(out_);
  if (held_in_.empty()) std::string().swap(held_in_);
}

std::string_view TlsSession::version() const { return ssl_ && state_ != TlsState::kIdle ? SSL_get_version(ssl_) : ""; }

std::string_view TlsSession::cipher() const {
  const char* c = ssl_ ? SSL_get_cipher_name(ssl_) : nullptr;
  return c ? c : "";
}

int TlsSession::cipher_bits() const { return ssl_ ? SSL_get_cipher_bits(ssl_, nullptr) : 0; }

bool TlsSession::resumed() const { return ssl_ && SSL_session_reused(ssl_) == 1; }

bool TlsSession::peer_has_certificate() const { return ssl_ && SSL_get0_peer_certificate(ssl_) != nullptr; }

std::string TlsSession::peer_subject() const {
  X509* cert = ssl_ ? SSL_get0_peer_certificate(ssl_) : nullptr;
  if (cert == nullptr) return "no certificate";
  BIO* b = BIO_new(BIO_s_mem());
  if (b == nullptr) return "?";
  X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  std::string text(BIO_ctrl_pending(b), '\0');
  int n = BIO_read(b, text.data(), static_cast<int>(text.size()));
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  BIO_free(b);
  return text;
}

std::string_view TlsSession::sni() const {
  const char* n = ssl_ ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
  return n ? n : "";
}

bool TlsSession::on_new_session(SSL_SESSION* session) {
  if (cache_key_.empty() || state_ == TlsState::kFailed) return false;
  context_.sessions().store(cache_key_, session);
  return true;
}

}  // namespace ringmail::tls
