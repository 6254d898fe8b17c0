// Settings of an outbound SMTP client session, filled from the send connector by the engine: our
// EHLO name, per-command timeouts (RFC 5321 §4.5.3.2 defaults), batching and reuse limits, the
// STARTTLS policy and smart-host credentials. Plain data; loading and validating connector config
// does not belong here.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ringmail::smtp {

// Minimum values from RFC 5321 §4.5.3.2 (Postfix uses the same numbers).
struct ClientTimeouts {
  std::chrono::seconds connect{30};      // TCP connect (enforced by the engine; reported here for one table)
  std::chrono::seconds greeting{300};    // 220 banner (§4.5.3.2.1)
  std::chrono::seconds helo{300};        // EHLO / HELO reply
  std::chrono::seconds mail{300};        // MAIL reply (§4.5.3.2.2)
  std::chrono::seconds rcpt{300};        // RCPT reply (§4.5.3.2.3)
  std::chrono::seconds data_init{120};   // 354 after DATA (§4.5.3.2.4)
  std::chrono::seconds data_block{180};  // each send of message data (§4.5.3.2.5)
  std::chrono::seconds final_dot{600};   // reply to the final "." (§4.5.3.2.6)
  std::chrono::seconds rset{300};        // RSET reply
  std::chrono::seconds quit{300};        // QUIT reply (the engine may close sooner)
};

// When the session sends STARTTLS (RFC 3207). Certificate checks are the engine's (TLS layer).
enum class StartTls : uint8_t {
  kNever,      // connector tls = "none" (or the engine remembers this host's TLS as broken)
  kIfOffered,  // "opportunistic": STARTTLS when announced; plain text when not offered or refused
  kRequired,   // "required" / "verify": no TLS, no mail (this host is given up: try the next)
};

// SMTP AUTH toward a smart host (RFC 4954). Empty username: no AUTH.
struct ClientAuth {
  std::string username;          // authentication identity
  std::string password;          // secret: never logged, never put in an outcome text
  std::string mechanism;         // "PLAIN" or "LOGIN"; empty: PLAIN if offered, else LOGIN
  bool allow_plaintext = false;  // AUTH without TLS allowed (connector auth_allow_plaintext)
  bool enabled() const { return !username.empty(); }
};

struct ClientConfig {
  std::string helo_name;                         // our name in EHLO/HELO (the connector's fqdn)
  ClientTimeouts timeouts;                       // per stage
  size_t max_recipients_per_transaction = 100;   // RCPTs in one transaction; RFC 5321 §4.5.3.1.8 says servers take ≥100
  unsigned max_messages_per_connection = 0;      // transactions sent on one connection before QUIT; 0 = no limit
  std::chrono::seconds idle_timeout{0};          // wait this long for offer() when out of work; 0 = QUIT at once
  bool use_pipelining = true;                    // pipeline MAIL/RCPT/DATA when the server announces PIPELINING
  size_t max_output_chunk = 64 * 1024;           // message data appended per step (on_output_drained)
  size_t max_buffered_input = 64 * 1024;         // server bytes held while sending data; beyond: protocol error
  StartTls starttls = StartTls::kNever;          // STARTTLS policy (the engine sets it from the connector)
  ClientAuth auth;                               // smart-host credentials; empty username: no AUTH
  bool transcript = false;                       // report the dialogue through ClientHooks::on_transcript
};

}  // namespace ringmail::smtp
