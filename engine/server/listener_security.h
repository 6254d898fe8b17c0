// What the listener offers beyond plain SMTP, loaded once at start-up from --tls-cert/--tls-key
// (STARTTLS), --require-tls and --auth-file (AUTH): the files are checked here, so a bad
// certificate, key or credentials file is a start-up error, never a failure on the first client.
// Shared read-only by the workers; each worker builds its own TLS context from it.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "engine/server/credentials.h"
#include "engine/smtp/server_session.h"
#include "engine/tls/tls_context.h"

namespace ringmail::engine {

struct ListenerSecurityOptions {
  std::string tls_cert;     // PEM certificate chain; empty: no STARTTLS
  std::string tls_key;      // PEM private key for tls_cert
  bool require_tls = false; // MAIL only after STARTTLS
  std::string auth_file;    // credentials for AUTH; empty: no AUTH
};

struct ListenerSecurity {
  std::string tls_cert;                                 // empty: no STARTTLS
  std::string tls_key;                                  // key for tls_cert
  bool require_tls = false;                             // MAIL only after STARTTLS
  std::shared_ptr<const CredentialStore> credentials;  // null: no AUTH
  std::string ticket_keys;                              // 80 random bytes per process: tickets valid on every worker

  // The protocol flags for smtp::ServerConfig::security.
  smtp::ServerSecurity protocol() const;
  // A server TLS context for one worker (platform-notes §2.3: one per worker, never per connection).
  Result<std::unique_ptr<tls::TlsContext>> make_tls_context() const;
};

// Checks the combination (a key needs a certificate and the other way round; --require-tls and
// --auth-file need a certificate, since AUTH is only offered over TLS), loads the certificate and
// key once to prove they work together, and loads the credentials file. Errors name the flag and file.
Result<std::shared_ptr<const ListenerSecurity>> load_listener_security(const ListenerSecurityOptions& options);

}  // namespace ringmail::engine
