// Failure classification for the SMTP client: the stage rules table and the functions that read it.
// Changing what a reply means is a change to kStageRules (and its table test), nowhere else.
#include "engine/smtp/delivery_outcome.h"

#include <fmt/format.h>

#include <array>

namespace ringmail::smtp {
namespace {

struct StageRules {
  std::string_view name;       // the command, for "in reply to ..."
  int positive_class;          // the reply class that means success (2, or 3 for DATA); 0 = any reply will do
  FailureScope reply_scope;    // whom a 4xx/5xx reply at this stage concerns
  bool reply_tries_next_host;  // 4xx/5xx here means "this host will not serve us": try the next one
  bool loss_tries_next_host;   // loss/timeout here leaves nothing delivered: try the next host
};

// Indexed by ClientStage. Why each row is what it is: docs/smtp-client.md "Outcome classification".
constexpr std::array<StageRules, static_cast<size_t>(ClientStage::kCount)> kStageRules{{
    {"connect", 2, FailureScope::kConnection, true, true},
    {"greeting", 2, FailureScope::kConnection, true, true},
    {"EHLO", 2, FailureScope::kConnection, true, true},
    {"HELO", 2, FailureScope::kConnection, true, true},
    {"MAIL FROM", 2, FailureScope::kMessage, false, true},
    {"RCPT TO", 2, FailureScope::kRecipient, false, true},
    {"DATA", 3, FailureScope::kMessage, false, true},
    {"message data", 2, FailureScope::kMessage, false, true},
    // After the dot the server may have taken the message even if we never see its reply.
    {"end of data", 2, FailureScope::kMessage, false, false},
    {"RSET", 2, FailureScope::kConnection, false, false},
    {"QUIT", 0, FailureScope::kConnection, false, false},
    {"idle", 0, FailureScope::kConnection, false, false},
    {"local check", 2, FailureScope::kMessage, false, false},
}};
static_assert(kStageRules.size() == static_cast<size_t>(ClientStage::kCount), "one row per stage");

const StageRules& rules(ClientStage s) { return kStageRules[static_cast<size_t>(s)]; }

DeliveryOutcome make_local(OutcomeKind kind, FailureScope scope, ClientStage stage, int code,
                           std::string_view enhanced, std::string text) {
  DeliveryOutcome o;
  o.kind = kind;
  o.scope = scope;
  o.stage = stage;
  o.reply.code = code;
  o.reply.enhanced.assign(enhanced);
  o.reply.text = std::move(text);
  o.local = true;
  return o;
}

}  // namespace

std::string_view stage_name(ClientStage stage) { return rules(stage).name; }

DeliveryOutcome classify_reply(ClientStage stage, const Reply& reply) {
  DeliveryOutcome o;
  classify_reply(stage, reply, o);
  return o;
}

void classify_reply(ClientStage stage, const Reply& reply, DeliveryOutcome& out) {
  const StageRules& r = rules(stage);
  const int klass = reply.klass();
  const bool positive = r.positive_class == 0 || klass == r.positive_class;
  if (!positive && klass != 4 && klass != 5) {
    out = classify_transport_failure(stage, TransportFailure::kProtocolError,
                                     fmt::format("unexpected reply {} {}", reply.code, reply.text));
    return;
  }
  out.stage = stage;
  out.reply.code = reply.code;
  out.reply.enhanced.assign(reply.enhanced);
  out.reply.text.assign(reply.text);
  out.local = false;
  out.possible_duplicate = false;
  if (positive) {
    out.kind = OutcomeKind::kSuccess;
    out.scope = FailureScope::kNone;
  } else if (reply.code == 421 || r.reply_tries_next_host) {
    // 421: the server is shutting the channel (RFC 5321 §3.8); nothing in this session can go on.
    out.kind = OutcomeKind::kTryNextHost;
    out.scope = FailureScope::kConnection;
  } else {
    out.kind = klass == 4 ? OutcomeKind::kTransient : OutcomeKind::kPermanent;
    out.scope = r.reply_scope;
  }
}

DeliveryOutcome classify_transport_failure(ClientStage stage, TransportFailure what, std::string_view detail) {
  const StageRules& r = rules(stage);
  std::string text;
  std::string_view enhanced = "4.4.2";  // RFC 3463: bad connection
  switch (what) {
    case TransportFailure::kConnectFailed:
      enhanced = "4.4.1";  // no answer from host
      text = fmt::format("connect to host failed");
      break;
    case TransportFailure::kLost:
      text = fmt::format("lost connection with host while waiting for reply to {}", r.name);
      break;
    case TransportFailure::kTimeout:
      text = fmt::format("timeout waiting for reply to {}", r.name);
      break;
    case TransportFailure::kProtocolError:
      enhanced = "4.5.0";  // other or undefined protocol status
      text = fmt::format("protocol error in reply to {}", r.name);
      break;
  }
  if (stage == ClientStage::kDataBlock && what != TransportFailure::kProtocolError)
    text = fmt::format("{} while sending message data", what == TransportFailure::kTimeout ? "timeout" : "lost connection");
  if (!detail.empty()) fmt::format_to(std::back_inserter(text), ": {}", detail);

  if (r.loss_tries_next_host)
    return make_local(OutcomeKind::kTryNextHost, FailureScope::kConnection, stage, 451, enhanced, std::move(text));
  if (stage == ClientStage::kDot) {
    // The dot went out: the server may have delivered already. Retrying is at-least-once delivery,
    // a duplicate is possible (RFC 5321 §4.5.3.2.6 explains why the dot timeout is 10 minutes).
    DeliveryOutcome o = make_local(OutcomeKind::kTransient, FailureScope::kMessage, stage, 451, enhanced, std::move(text));
    o.possible_duplicate = true;
    return o;
  }
  // RSET, QUIT, idle: no recipient is outstanding; this only explains why the session ended.
  return make_local(OutcomeKind::kTransient, FailureScope::kConnection, stage, 451, enhanced, std::move(text));
}

DeliveryOutcome classify_local_refusal(LocalRefusal why, uint64_t limit) {
  switch (why) {
    case LocalRefusal::kTooBig:
      return make_local(OutcomeKind::kPermanent, FailureScope::kMessage, ClientStage::kLocal, 552, "5.3.4",
                        fmt::format("message size exceeds the fixed maximum message size of the server ({} octets)", limit));
    case LocalRefusal::kNeeds8BitMime:
      return make_local(OutcomeKind::kPermanent, FailureScope::kMessage, ClientStage::kLocal, 554, "5.6.3",
                        "message has 8-bit content but the server does not support 8BITMIME");
    case LocalRefusal::kNeedsSmtpUtf8:
      return make_local(OutcomeKind::kPermanent, FailureScope::kMessage, ClientStage::kLocal, 553, "5.6.7",
                        "message needs SMTPUTF8 but the server does not support it");
    case LocalRefusal::kTooManyRecipients:
      return make_local(OutcomeKind::kTransient, FailureScope::kRecipient, ClientStage::kLocal, 452, "4.5.3",
                        fmt::format("more than {} recipients in one transaction: not attempted", limit));
  }
  return make_local(OutcomeKind::kTransient, FailureScope::kMessage, ClientStage::kLocal, 451, "4.3.0", "internal error");
}

Disposition disposition(const DeliveryOutcome& outcome, bool more_hosts) {
  switch (outcome.kind) {
    case OutcomeKind::kSuccess: return Disposition::kDelivered;
    case OutcomeKind::kTransient: return Disposition::kDeferred;
    case OutcomeKind::kPermanent: return Disposition::kFailed;
    case OutcomeKind::kTryNextHost: return more_hosts ? Disposition::kTryNextHost : Disposition::kDeferred;
  }
  return Disposition::kDeferred;
}

std::string describe(const DeliveryOutcome& o) {
  const Reply& r = o.reply;
  std::string text = r.text;
  for (char& c : text)
    if (c == '\n') c = ' ';
  if (o.local) return fmt::format("{} {}{}{}", r.code, r.enhanced, r.enhanced.empty() ? "" : " ", text);
  return fmt::format("host said: {} {}{}{} (in reply to {})", r.code, r.enhanced, r.enhanced.empty() ? "" : " ", text,
                     stage_name(o.stage));
}

}  // namespace ringmail::smtp
