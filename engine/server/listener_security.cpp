// Start-up checks and loading for the listener's STARTTLS and AUTH (see listener_security.h).
#include "engine/server/listener_security.h"

#include <openssl/rand.h>

#include "common/log.h"

namespace ringmail::engine {

smtp::ServerSecurity ListenerSecurity::protocol() const {
  smtp::ServerSecurity s;
  s.tls_available = !tls_cert.empty();
  s.require_tls = require_tls;
  s.auth_available = credentials != nullptr;
  return s;
}

Result<std::unique_ptr<tls::TlsContext>> ListenerSecurity::make_tls_context() const {
  tls::ServerContextOptions o;
  o.cert_file = tls_cert;
  o.key_file = tls_key;
  o.ticket_keys = ticket_keys;
  return tls::TlsContext::server(o);
}

Result<std::shared_ptr<const ListenerSecurity>> load_listener_security(const ListenerSecurityOptions& options) {
  auto sec = std::make_shared<ListenerSecurity>();
  if (options.tls_cert.empty() != options.tls_key.empty())
    return make_error("--tls-cert and --tls-key go together: give both or neither");
  if (options.require_tls && options.tls_cert.empty())
    return make_error("--require-tls needs a certificate (--tls-cert and --tls-key)");
  if (!options.auth_file.empty() && options.tls_cert.empty())
    return make_error("--auth-file needs a certificate (--tls-cert and --tls-key): AUTH is only offered over TLS");
  sec->tls_cert = options.tls_cert;
  sec->tls_key = options.tls_key;
  sec->require_tls = options.require_tls;
  if (!sec->tls_cert.empty()) {
    sec->ticket_keys.resize(80);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(sec->ticket_keys.data()), 80) != 1)
      return make_error("cannot draw random TLS ticket keys");
    auto probe = sec->make_tls_context();  // proves the pair loads; the workers build their own
    if (!probe) return make_error("--tls-cert/--tls-key: {}", probe.error().message());
  }
  if (!options.auth_file.empty()) {
    auto store = CredentialStore::load(options.auth_file);
    if (!store) return make_error("--auth-file: {}", store.error().message());
    sec->credentials = std::move(*store);
  }
  if (!sec->tls_cert.empty())
    log::info("listener: STARTTLS offered with {}{}{}", sec->tls_cert, sec->require_tls ? ", required before MAIL" : "",
              sec->credentials ? fmt::format(", AUTH PLAIN LOGIN for {} users", sec->credentials->size()) : "");
  return std::shared_ptr<const ListenerSecurity>(std::move(sec));
}

}  // namespace ringmail::engine
