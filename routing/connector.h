// The send-connector model: what one `[[connector]]` table of the connector file means once
// parsed and validated (routing/config_loader.cpp builds it). Plain data, no behaviour beyond
// small helpers; matching and selection live in routing/table.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringmail::routing {

// The shape of an address-space pattern, from least to most specific.
enum class PatternKind : uint8_t {
  kAll,       // "*": every domain
  kWildcard,  // "*.example.com": example.com and every subdomain, on label boundaries
  kExact,     // "example.com": that domain only
};

struct AddressSpace {
  PatternKind kind = PatternKind::kExact;  // shape of the pattern
  std::string domain;                      // normalised A-label suffix or name; empty for "*"
  uint8_t cost = 1;                        // 1-100, lower wins among equally specific matches
  uint32_t line = 0;                       // line in the connector file, for messages

  // The pattern as an operator writes it: "*", "*.example.com" or "example.com".
  std::string pattern() const;
};

enum class TlsPolicy : uint8_t {
  kNone,           // never STARTTLS
  kOpportunistic,  // STARTTLS when offered, no certificate check, plain text otherwise
  kRequired,       // STARTTLS or defer; certificate not checked
  kVerify,         // STARTTLS with a valid chain whose name matches tls_domain (or the MX host)
};
std::string_view tls_policy_name(TlsPolicy p);

struct SmartHost {
  std::string host;            // normalised host name, or the bare IP for a literal
  uint16_t port = 0;           // 0: use the connector's port
  bool is_ip_literal = false;  // written as "[192.0.2.7]" or a bare IPv4 address
};

// Credentials are read from their file when the connector file is loaded (not on the delivery
// path); the file must not be accessible by group or others.
struct SmartHostAuth {
  std::string mechanism;      // "PLAIN" or "LOGIN"; empty: PLAIN if the server offers it, else LOGIN
  std::string username;       // SASL authentication identity
  std::string password_file;  // where the secret came from (auth.password_file or auth_file)
  std::string password;       // the secret itself: never logged, never printed
  uint32_t line = 0;          // line of the auth / auth_file key, for messages
};

// Outbound SMTP timeouts (RFC 5321 §4.5.3.2 minimums as defaults; Postfix uses the same values).
struct ConnectorTimeouts {
  std::chrono::seconds connect{30};     // TCP connect
  std::chrono::seconds greeting{300};   // 220 banner
  std::chrono::seconds helo{300};       // EHLO/HELO reply
  std::chrono::seconds mail{300};       // MAIL reply
  std::chrono::seconds rcpt{300};       // RCPT reply
  std::chrono::seconds data_init{120};  // 354 after DATA
  std::chrono::seconds data_block{180}; // each block of message data
  std::chrono::seconds final_dot{600};  // reply to the final "."
  std::chrono::seconds quit{300};       // QUIT (and RSET) reply
};

struct Connector {
  std::string name;                              // unique (case-insensitively) within the file
  bool enabled = true;                           // disabled connectors are never selected
  std::vector<AddressSpace> address_spaces;      // at least one
  std::vector<SmartHost> smart_hosts;            // empty: route by DNS MX of the recipient domain
  uint16_t port = 25;                            // destination port (smart hosts may override)
  std::string fqdn;                              // EHLO name; empty: the daemon's host name
  std::vector<std::string> source_addresses;     // egress IPs to bind (normalised text form)
  std::vector<std::string> nodes;                // nodes allowed to use it; empty: every node
  uint64_t max_message_size = 0;                 // bytes; 0 = unlimited
  TlsPolicy tls = TlsPolicy::kOpportunistic;     // STARTTLS policy
  std::string tls_domain;                        // name to verify the certificate against
  std::string tls_ca_file;                       // CA bundle for tls = "verify"; empty: the system store
  std::optional<SmartHostAuth> auth;             // SMTP AUTH toward smart hosts
  bool auth_allow_plaintext = false;             // AUTH may be sent without TLS (explicit opt-in)
  uint32_t max_connections_per_destination = 20; // concurrent sessions per next hop
  uint32_t max_messages_per_connection = 1000;   // then QUIT and reconnect
  uint32_t max_recipients_per_transaction = 100; // RCPT TO commands per MAIL transaction
  std::chrono::seconds connection_idle_timeout{10};  // idle pooled session is closed after this
  ConnectorTimeouts timeouts;                    // per-command timeouts of outbound sessions
  struct Retry {                                 // overrides of the daemon's retry flags; unset = the flag
    std::optional<std::chrono::seconds> min;           // retry_min: first back-off step
    std::optional<std::chrono::seconds> max;           // retry_max: longest back-off
    std::optional<std::chrono::seconds> expiration;    // message_expiration: give up (failure DSN)
    std::optional<std::chrono::seconds> delay_notice;  // delay_notice: one delay DSN (0 = never)
  } retry;
  bool protocol_log = false;                     // per-connector SMTP transcript log
  uint32_t line = 0;                             // line of its [[connector]] header

  bool uses_smart_hosts() const { return !smart_hosts.empty(); }
};

// A whole validated connector file. Immutable once built; shared by the tables compiled from it.
struct Config {
  std::string source;                // file path (or test name) it was read from
  std::vector<Connector> connectors; // in file order
};

// Who "this node" is, for the `nodes` restriction (rule 1) and the locality tie-break (rule 4).
struct NodeIdentity {
  std::string name;                    // node name as used in connectors' `nodes`
  std::vector<std::string> addresses;  // this node's IP addresses, matched to source_addresses
};

}  // namespace ringmail::routing
