// TlsContext implementation: the OpenSSL settings both roles share (platform-notes §2:
// IGNORE_UNEXPECTED_EOF, TLS 1.2 minimum; record buffers released when idle) and each role's own.
#include "engine/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "engine/tls/tls_session.h"

namespace ringmail::tls {

std::string take_openssl_errors(std::string_view fallback) {
  std::string text;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  if (text.empty()) text.assign(fallback);
  return text;
}

namespace {

SSL_CTX* new_common_ctx(const SSL_METHOD* method) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Many SMTP peers close without close_notify after QUIT; without this OpenSSL 3 reports an error.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  // Not SSL_MODE_RELEASE_BUFFERS: it frees and re-allocates the 16 KiB record buffers after every
  // record, which under load cost more than the cipher. Idle sessions give them back instead
  // (TlsSession::release_buffers → SSL_free_buffers; ≈44 KiB → ≈28 KiB per session, §2.2).
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}

// OpenSSL hands us each new client session (TLS 1.3: after the handshake, during a read); the
// session object knows under which next hop to keep it. Returning 1 takes the reference.
int on_new_client_session(SSL* ssl, SSL_SESSION* session) {
  auto* s = static_cast<TlsSession*>(SSL_get_app_data(ssl));
  if (s == nullptr) return 0;
  return s->on_new_session(session) ? 1 : 0;
}

}  // namespace

Result<std::unique_ptr<TlsContext>> TlsContext::client(const ClientContextOptions& options) {
  SSL_CTX* ctx = new_common_ctx(TLS_client_method());
  if (ctx == nullptr) return make_error("TLS client context: {}", take_openssl_errors("SSL_CTX_new failed"));
  std::unique_ptr<TlsContext> c(new TlsContext(Role::kClient, ctx, options.session_cache_size));
  c->ca_file_ = options.ca_file;  // the trust store is loaded by the first verifying session
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, on_new_client_session);
  return c;
}

Result<std::unique_ptr<TlsContext>> TlsContext::server(const ServerContextOptions& options) {
  SSL_CTX* ctx = new_common_ctx(TLS_server_method());
  if (ctx == nullptr) return make_error("TLS server context: {}", take_openssl_errors("SSL_CTX_new failed"));
  std::unique_ptr<TlsContext> c(new TlsContext(Role::kServer, ctx, 0));
  if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1)
    return make_error("TLS certificate {}: {}", options.cert_file, take_openssl_errors("cannot load"));
  if (SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::string why = take_openssl_errors("cannot load");
    if (why.find("key values mismatch") != std::string::npos)
      return make_error("TLS key {} does not match certificate {}", options.key_file, options.cert_file);
    return make_error("TLS key {}: {}", options.key_file, why);
  }
  if (SSL_CTX_check_private_key(ctx) != 1)
    return make_error("TLS key {} does not match certificate {}", options.key_file, options.cert_file);
  // Server-side resumption by stateless tickets only. Contexts given the same ticket keys (every
  // worker of one listener) accept each other's tickets, so a client that reconnects to another
  // worker (SO_REUSEPORT spreads connections) still resumes.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (!options.ticket_keys.empty()) {
    if (options.ticket_keys.size() != 80) return make_error("TLS ticket keys must be 80 bytes");
    std::string keys = options.ticket_keys;
    if (SSL_CTX_set_tlsext_ticket_keys(ctx, keys.data(), static_cast<long>(keys.size())) != 1)
      return make_error("TLS ticket keys: {}", take_openssl_errors("cannot set"));
  }
  return c;
}

Status TlsContext::ensure_trust_store() {
  if (trust_loaded_) return {};
  // Once per context (platform-notes §2.3), and only when a session verifies: parsing the system
  // bundle takes ~20 ms and ~1 MB, which relays that never verify need not pay.
  ERR_clear_error();
  int loaded = ca_file_.empty() ? SSL_CTX_set_default_verify_paths(ctx_)
                                : SSL_CTX_load_verify_locations(ctx_, ca_file_.c_str(), nullptr);
  if (loaded != 1) {
    return make_error("cannot load the TLS trust store {}: {}", ca_file_.empty() ? std::string("(system store)") : ca_file_,
                      take_openssl_errors("no detail"));
  }
  trust_loaded_ = true;
  return {};
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

}  // namespace ringmail::tls
