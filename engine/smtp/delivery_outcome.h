// What a server reply, a network failure or a local check means for delivery: the ONE place where
// failures are classified (STYLE habit 5), by scope (connection, destination, message, recipient)
// × kind (success, transient, permanent, try the next host), keeping the full reply for logs and
// DSNs. The client session calls these functions; the engine applies the result. No protocol
// state and no I/O here. The policy is written out in docs/smtp-client.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/smtp/reply_parser.h"

namespace ringmail::smtp {

// The point of the dialogue an outcome belongs to: the command whose reply was awaited, or the phase.
enum class ClientStage : uint8_t {
  kConnect,    // TCP connect (before any byte from the server)
  kGreeting,   // waiting for the 220 banner
  kEhlo,       // EHLO sent
  kHelo,       // HELO sent (after EHLO was refused with 5xx)
  kMail,       // MAIL FROM sent
  kRcpt,       // RCPT TO sent
  kData,       // DATA sent, waiting for 354
  kDataBlock,  // sending the message data (before the final dot went out)
  kDot,        // final "." sent, waiting for the verdict on the message
  kRset,       // RSET sent
  kQuit,       // QUIT sent
  kIdle,       // between transactions, nothing outstanding
  kLocal,      // a local check before anything was sent for the message (SIZE, 8BITMIME, SMTPUTF8)
  kCount,
};

std::string_view stage_name(ClientStage stage);  // "MAIL FROM", "end of data", ... as in "in reply to ..."

enum class OutcomeKind : uint8_t {
  kSuccess,      // positive reply; at the end of data: delivered
  kTransient,    // 4xx or trouble after the data may have arrived: defer and retry later
  kPermanent,    // 5xx: fail (bounce) now
  kTryNextHost,  // this host cannot be used now: try the next MX / smart host, defer if none is left
};

enum class FailureScope : uint8_t {
  kNone,         // success
  kConnection,   // this connection: every recipient not yet final on it
  kDestination,  // every host of the next hop (decided by the engine after the last host failed)
  kMessage,      // every recipient of this message in this transaction
  kRecipient,    // one recipient
};

// Failures that come from the transport or from our own checks rather than from a reply.
enum class TransportFailure : uint8_t {
  kConnectFailed,  // TCP connect (or TLS set-up) did not succeed
  kLost,           // the connection closed or failed (including closed in the middle of a reply)
  kTimeout,        // no reply within the stage's timeout
  kProtocolError,  // a reply that is not SMTP, or not one that fits the command
};

enum class LocalRefusal : uint8_t {
  kTooBig,             // larger than the server's advertised SIZE: 552 5.3.4
  kNeeds8BitMime,      // 8-bit body, server lacks 8BITMIME: 554 5.6.3
  kNeedsSmtpUtf8,      // UTF-8 envelope/headers, server lacks SMTPUTF8: 553 5.6.7
  kTooManyRecipients,  // beyond the per-transaction cap: 452 4.5.3 (transient, sent in a later transaction)
};

struct DeliveryOutcome {
  OutcomeKind kind = OutcomeKind::kSuccess;    // what to do
  FailureScope scope = FailureScope::kNone;    // whom it concerns
  ClientStage stage = ClientStage::kConnect;   // where in the dialogue it happened
  Reply reply;                                 // the server's reply, or one made up locally (see local)
  bool local = false;                          // reply made up by ringmail (timeout, loss, check), not the server's
  bool possible_duplicate = false;             // lost after the final dot: the server may have taken it (at-least-once)

  bool ok() const { return kind == OutcomeKind::kSuccess; }
};

// A reply received at `stage`. The positive class (2xx, or 3xx after DATA) is success; 421 anywhere
// means the server is closing: try the next host; other 4xx/5xx by stage as in docs/smtp-client.md.
// A positive reply of the wrong class (250 to DATA) is a protocol error.
DeliveryOutcome classify_reply(ClientStage stage, const Reply& reply);
// The same into `out`, reusing its string buffers (the session's per-reply path allocates nothing).
void classify_reply(ClientStage stage, const Reply& reply, DeliveryOutcome& out);
// A failure without a usable reply at `stage`; `detail` (errno text, parser error) goes into the text.
DeliveryOutcome classify_transport_failure(ClientStage stage, TransportFailure what, std::string_view detail);
// A message refused by our own checks before any command was sent for it. `limit` is shown in the
// text (SIZE limit or recipient cap).
DeliveryOutcome classify_local_refusal(LocalRefusal why, uint64_t limit);

// What happens to a recipient with this outcome, as the queue sees it.
enum class Disposition : uint8_t {
  kDelivered,    // remove from the queue
  kDeferred,     // retry later (back-off)
  kFailed,       // bounce (DSN) now
  kTryNextHost,  // retry at once on the next host of the same next hop
};
// `more_hosts`: the next hop has another host to try in this attempt. Try-next-host on the last host
// becomes a deferral (RFC 5321 §5.1: all hosts are tried before the recipients are deferred).
Disposition disposition(const DeliveryOutcome& outcome, bool more_hosts);

// One line for logs and the DSN Diagnostic-Code: "host said: 550 5.1.1 User unknown (in reply to
// RCPT TO)" or "timeout waiting for reply to DATA" for local outcomes.
std::string describe(const DeliveryOutcome& outcome);

}  // namespace ringmail::smtp
