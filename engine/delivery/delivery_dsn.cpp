// Delivery status notifications from the delivery side: which recipients a report covers (NOTIFY),
// composing it (queue/dsn) and committing it to the spool through this worker's writer. Part of
// Delivery.
#include "engine/delivery/delivery.h"

#include <algorithm>

#include "common/log.h"
#include "queue/dsn.h"

namespace ringmail::engine {

// kSuccess reports are "relayed" ones: sent when NOTIFY=SUCCESS was asked for and the next hop
// took the message without announcing DSN (RFC 3461 §4.1), so nobody downstream will report.
void Delivery::send_dsn(const queue::QueuedMessage& msg, queue::dsn::ReportKind kind,
                        const std::vector<DeliveryWork::Bounce>& rcpts, const std::string& remote,
                        std::string_view original, const queue::RetryPolicy* policy) {
  namespace dsn = queue::dsn;
  const auto& env = msg.env;
  const bool delay = kind == dsn::ReportKind::kDelay;
  const char* what = delay ? "delay" : kind == dsn::ReportKind::kSuccess ? "relayed" : "failure";
  std::string qid = queue::format_queue_id(env.id);
  if (env.mail_from.empty()) {
    // A bounce (or any null-sender message) never produces a DSN: that is how loops are avoided.
    log::info("{}: no {} DSN: the message has the null sender", qid, what);
    return;
  }
  auto wall_now = std::chrono::system_clock::now();
  dsn::Report report;
  report.kind = kind;
  report.envelope_sender = env.mail_from;
  report.envid = env.envid;
  report.ret = static_cast<dsn::Ret>(env.dsn_ret);
  report.arrival = env.arrival;
  report.reporting_mta = shared_.hostname;
  report.queue_id = qid;
  for (const auto& b : rcpts) {
    uint8_t notify = b.rcpt < env.rcpt_dsn.size() ? env.rcpt_dsn[b.rcpt].notify : 0;
    if (!dsn::report_wanted(env.mail_from, notify, kind)) continue;
    dsn::RecipientReport rr;
    rr.address = env.rcpts[b.rcpt];
    if (b.rcpt < env.rcpt_dsn.size()) rr.orcpt = {env.rcpt_dsn[b.rcpt].orcpt_type, env.rcpt_dsn[b.rcpt].orcpt};
    rr.action = delay ? dsn::Action::kDelayed : kind == dsn::ReportKind::kSuccess ? dsn::Action::kRelayed : dsn::Action::kFailed;
    rr.status = delay && b.status[0] != '4' ? "4.0.0" : b.status;
    rr.remote_mta = remote;
    rr.diagnostic = b.diagnostic;
    rr.last_attempt = wall_now;
    if (delay) rr.will_retry_until = queue::expires_at(policy ? *policy : shared_.retry, env.arrival);
    report.recipients.push_back(std::move(rr));
  }
  if (report.recipients.empty()) {
    log::info("{}: no {} DSN: NOTIFY asked for none", qid, what);
    return;
  }
  dsn::ComposeOptions options;
  options.now = wall_now;
  options.unique = rng_();
  auto composed = dsn::compose(report, original, options);
  if (!composed) {
    log::error("{}: cannot compose a DSN: {}", qid, composed.error().message());
    return;
  }
  if (!local_) {
    log::warn("{}: {} DSN for <{}> dropped: no spool writer for DSNs", qid, what, env.mail_from);
    return;
  }
  queue::StoredEnvelope out;
  out.arrival = wall_now;
  out.mail_from.clear();  // null reverse-path (RFC 5321 §4.5.5)
  out.rcpts.push_back(composed->rcpt_to);
  out.flags = (composed->eight_bit ? queue::kEnvelope8BitMime : 0u) | (composed->smtputf8 ? queue::kEnvelopeSmtpUtf8 : 0u);
  out.client = fmt::format("DSN for {}", qid);
  log::info("{}: {} DSN for {} recipient(s) queued to <{}>", qid, what, report.recipients.size(), env.mail_from);
  if (tracking_) tracking_->dsn(env.id, what, env.mail_from, report.recipients.size());
  shared_.dsns.fetch_add(1, std::memory_order_relaxed);
  local_->submit(std::move(out), std::move(composed->message));
}

}  // namespace ringmail::engine
