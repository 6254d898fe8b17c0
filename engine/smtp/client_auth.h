// The pieces of outbound STARTTLS and SMTP AUTH (RFC 3207, RFC 4954, RFC 4616 PLAIN, the LOGIN
// draft) that are not state: the AUTH command lines with base64 credentials, the choice of
// mechanism, and the outcomes for TLS/AUTH failures (which say what failed and never carry a
// secret). The state machine that uses them is client_session.
#pragma once

#include <string>
#include <string_view>

#include "engine/smtp/client_config.h"
#include "engine/smtp/delivery_outcome.h"
#include "engine/smtp/sasl.h"  // append_base64, wipe (shared with the server side)

namespace ringmail::smtp {

// The mechanism to use given what the server announced ("PLAIN LOGIN ..."): the configured one if
// announced, else PLAIN, else LOGIN; empty when none fits.
std::string_view choose_auth_mechanism(const ClientAuth& auth, std::string_view announced);

// "AUTH PLAIN <base64(\0user\0password)>\r\n" (initial response, RFC 4954 §4).
void append_auth_plain(const ClientAuth& auth, std::string& out);

// Why the session gives up this host over TLS or AUTH: a local outcome (try the next host, so the
// recipients are deferred when no host is left), e.g. "454 4.7.0 TLS required: the server does not
// offer STARTTLS" or "535 5.7.8 AUTH PLAIN refused: host said 535 5.7.8 bad credentials".
DeliveryOutcome tls_failure_outcome(ClientStage stage, std::string_view what);
DeliveryOutcome auth_failure_outcome(ClientStage stage, std::string_view what);

}  // namespace ringmail::smtp
