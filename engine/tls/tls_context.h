// A TLS context of one worker thread (platform-notes §2.3: one SSL_CTX per worker, built from the
// same settings, never one per connection), in one of two roles: a server context with our
// certificate and key (the SMTP listener's STARTTLS), or a client context with the trust store
// used by `verify` sessions (system store or a CA file, loaded by the first one) and the client
// session-resumption cache.
// Construction may fail with a clear error; the only I/O after it is the one-time trust-store load
// of the first verifying session.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "engine/tls/session_cache.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace ringmail::tls {

enum class Role : uint8_t {
  kClient,  // we connect and send STARTTLS (outbound delivery)
  kServer,  // we answer STARTTLS (the listener)
};

struct ClientContextOptions {
  std::string ca_file;               // PEM bundle trusted by verifying sessions; empty: the system store
  size_t session_cache_size = 4096;  // next hops whose session is kept for resumption
};

struct ServerContextOptions {
  std::string cert_file;  // PEM certificate chain (leaf first)
  std::string key_file;   // PEM private key matching the certificate
  std::string ticket_keys;  // 80 bytes shared by every worker's context (a ticket resumes on any worker); empty: own keys
};

class TlsContext {
 public:
  static Result<std::unique_ptr<TlsContext>> client(const ClientContextOptions& options);
  static Result<std::unique_ptr<TlsContext>> server(const ServerContextOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  Role role() const { return role_; }
  SSL_CTX* native() const { return ctx_; }
  // Client role: resumable sessions by next hop (filled from OpenSSL's new-session callback).
  SessionCache& sessions() { return cache_; }
  const std::string& ca_file() const { return ca_file_; }
  // Client role: loads the trust store (the CA file, or the system store) on first use; later
  // calls are free. Fails with a clear error when the file cannot be read or parsed.
  Status ensure_trust_store();

 private:
  TlsContext(Role role, SSL_CTX* ctx, size_t cache_size) : role_(role), ctx_(ctx), cache_(cache_size) {}

  Role role_;           // client or server
  SSL_CTX* ctx_;        // owned
  SessionCache cache_;  // client role only; empty for servers
  std::string ca_file_; // client: the configured CA file (empty: system store)
  bool trust_loaded_ = false;  // ensure_trust_store() succeeded
};

// The OpenSSL error queue as one line ("error:0A000086:SSL routines::certificate verify failed"),
// emptied; `fallback` when the queue is empty.
std::string take_openssl_errors(std::string_view fallback);

}  // namespace ringmail::tls
