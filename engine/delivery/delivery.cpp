// Delivery implementation (see delivery.h): dispatch, the per-hop queues, sessions, outcomes and
// retries. Failure policy lives in engine/smtp/delivery_outcome; this file only carries it out:
// delivered/failed are final and journaled, deferred recipients come back after the back-off,
// "try next host" moves the next hop's cursor, and a next hop whose every host failed in a row
// waits (Retry) instead of hammering it. Where next hops send: delivery_hops.cpp; DSNs:
// delivery_dsn.cpp; admin operations: delivery_admin.cpp.
#include "engine/delivery/delivery.h"

#include <algorithm>
#include <functional>

#include "common/log.h"
#include "common/strings.h"
#include "engine/delivery/outbound_session.h"
#include "queue/dsn.h"
#include "queue/spool_scan.h"

namespace ringmail::engine {
namespace {
using namespace std::chrono;
constexpr auto kTickInterval = milliseconds(100);

std::string domain_of(std::string_view address) {
  auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : to_lower_ascii(address.substr(at + 1));
}

// The enhanced status for a DSN: the server's, else one derived from the reply class (RFC 3463).
std::string status_of(const smtp::DeliveryOutcome& o) {
  if (!o.reply.enhanced.empty()) return o.reply.enhanced;
  return o.reply.klass() == 4 ? "4.0.0" : "5.0.0";
}

// Diagnostic-Code: "smtp; <reply>" for a server's reply, "x-ringmail; <text>" for our own verdicts.
std::string diagnostic_of(const smtp::DeliveryOutcome& o) {
  std::string text = o.reply.text;
  for (char& c : text)
    if (c == '\n') c = ' ';
  std::string reply = fmt::format("{} {}{}{}", o.reply.code, o.reply.enhanced, o.reply.enhanced.empty() ? "" : " ", text);
  return o.local ? "x-ringmail; " + reply : "smtp; " + reply;
}

}  // namespace

namespace {

// Routes recipients `rcpts` of `msg` and posts each next hop's group to its owner. Recipients
// without a route are returned (and counted).
std::vector<uint32_t> route_recipients(DeliveryShared& shared, const std::shared_ptr<const routing::Table>& table,
                                       const queue::MessageRef& msg, const std::vector<uint32_t>& rcpts,
                                       std::string* reason) {
  struct Group {
    const routing::Connector* connector;
    std::string destination;
    std::vector<uint32_t> rcpts;
  };
  std::map<std::string, Group> groups;  // by next-hop key; a handful per message
  std::vector<uint32_t> unroutable;
  uint64_t size = msg->location.body_len;
  for (uint32_t i : rcpts) {
    std::string domain = domain_of(msg->env.rcpts[i]);
    routing::Selection sel;
    const routing::Connector* c = table->select(domain, size, &sel);
    if (!c) {
      *reason = routing::unreachable_reason(sel.unreachable);
      unroutable.push_back(i);
      continue;
    }
    // Smart-host connectors form one next hop; DNS-routed ones one per recipient domain.
    std::string destination = c->smart_hosts.empty() ? domain : std::string("smart-hosts");
    std::string key = c->name + "\n" + destination;
    auto& g = groups[key];
    g.connector = c;
    g.destination = destination;
    g.rcpts.push_back(i);
  }
  size_t n = shared.workers.size();
  for (auto& [key, g] : groups) {
    Delivery* owner = shared.workers[std::hash<std::string>{}(key) % n];
    owner->loop().post([owner, table, c = g.connector, key = key, dest = std::move(g.destination), msg,
                        rcpts = std::move(g.rcpts)]() mutable {
      owner->enqueue(table, c, std::move(key), std::move(dest), msg, std::move(rcpts));
    });
  }
  return unroutable;
}

void hold_unreachable(DeliveryShared& shared, const queue::MessageRef& msg, std::vector<uint32_t> rcpts,
                      std::string reason) {
  for (uint32_t i : rcpts)
    log::warn("{} <{}>: no connector ({}); held in the Unreachable queue until a reload routes it",
              queue::format_queue_id(msg->env.id), msg->env.rcpts[i], reason);
  shared.unreachable.fetch_add(rcpts.size(), std::memory_order_relaxed);
  std::lock_guard<std::mutex> g(shared.unreachable_mutex);
  shared.unreachable_queue.push_back({msg, std::move(rcpts), std::move(reason)});
}

}  // namespace

void dispatch_message(DeliveryShared& shared, const std::shared_ptr<const routing::Table>& table,
                      const queue::MessageRef& msg) {
  std::vector<uint32_t> rcpts;
  for (uint32_t i = 0; i < msg->env.rcpts.size(); ++i)
    if (!queue::is_final(msg->rcpts[i].state)) rcpts.push_back(i);
  std::string reason;
  auto unroutable = route_recipients(shared, table, msg, rcpts, &reason);
  if (!unroutable.empty()) hold_unreachable(shared, msg, std::move(unroutable), std::move(reason));
}

size_t redispatch_unreachable(DeliveryShared& shared, const std::shared_ptr<const routing::Table>& table) {
  std::vector<UnreachableEntry> entries;
  {
    std::lock_guard<std::mutex> g(shared.unreachable_mutex);
    entries.swap(shared.unreachable_queue);
  }
  size_t routed = 0;
  for (auto& e : entries) {
    if (e.msg->removed.load(std::memory_order_acquire)) continue;
    shared.unreachable.fetch_sub(e.rcpts.size(), std::memory_order_relaxed);
    std::string reason;
    auto still = route_recipients(shared, table, e.msg, e.rcpts, &reason);
    routed += e.rcpts.size() - still.size();
    if (still.empty()) continue;
    shared.unreachable.fetch_add(still.size(), std::memory_order_relaxed);
    std::lock_guard<std::mutex> g(shared.unreachable_mutex);
    shared.unreachable_queue.push_back({e.msg, std::move(still), std::move(reason)});
  }
  return routed;
}

void DeliveryWork::ReadOp::complete(int result) { work->delivery->on_loaded(work, result); }

Delivery::Delivery(unsigned id, Loop& loop, queue::FileIo& io, DeliveryShared& shared)
    : id_(id), loop_(loop), io_(io), shared_(shared), rng_(0x9e3779b97f4a7c15ull ^ id) {}

Delivery::~Delivery() {
  for (auto& [k, hop] : hops_)
    for (auto* w : hop->ready) delete w;
}

void Delivery::attach_writer(queue::SpoolWriter& writer, std::function<void(queue::MessageRef)> committed) {
  local_ = std::make_unique<LocalSubmitter>(writer, [this, committed = std::move(committed)](queue::MessageRef m) {
    if (!stopping_) committed(std::move(m));  // else it is in the spool and goes out after the restart
  });
}

ProtocolLog* Delivery::protocol_log() {
  if (shared_.protocol_log_dir.empty()) return nullptr;
  if (!protocol_log_)
    protocol_log_ = std::make_unique<ProtocolLog>(&loop_, shared_.protocol_log_dir, id_, SystemClock::instance(),
                                                  shared_.log_max_age_days);
  return protocol_log_.get();
}

Status Delivery::start() {
  auto j = shared_.spool->make_journal(id_, io_, SystemClock::instance());
  if (!j) return j.error();
  journal_ = std::move(*j);
  auto r = Resolver::create(loop_, shared_.dns);
  if (!r) return r.error();
  resolver_ = std::move(*r);
  loop_.timers().arm(tick_, loop_.now(), kTickInterval);
  return {};
}

void Delivery::enqueue(std::shared_ptr<const routing::Table> table, const routing::Connector* connector,
                       std::string key, std::string destination, queue::MessageRef msg, std::vector<uint32_t> rcpts) {
  NextHop& hop = hop_for(std::move(table), connector, key, destination);
  // One transaction carries at most the connector's recipient cap; more recipients of the same
  // message become further transactions right away (each reads the body on its own).
  // Recovered recipients that were deferred keep their retry time across the restart.
  size_t cap = std::max<size_t>(1, hop.client.max_recipients_per_transaction);
  auto wall_now = std::chrono::system_clock::now();
  auto now = loop_.now();
  hop.oldest = std::min(hop.oldest, msg->env.arrival);
  for (size_t first = 0; first < rcpts.size(); first += cap) {
    QueuedWork qw;
    qw.msg = msg;
    qw.rcpts = IndexList(rcpts.data() + first, std::min(rcpts.size(), first + cap) - first);
    WallTime due_wall{};
    for (uint32_t r : qw.rcpts)
      if (msg->rcpts[r].state == queue::RcptState::kDeferred) due_wall = std::max(due_wall, msg->rcpts[r].next_attempt);
    if (due_wall > wall_now) {
      schedule(hop, std::move(qw), now + duration_cast<milliseconds>(due_wall - wall_now));
    } else if (msg->suspended.load(std::memory_order_relaxed)) {
      hop.parked.push_back(std::move(qw));
    } else {
      hop.waiting.push_back(std::move(qw));
    }
  }
  if (hop.answer && hop.resolving == 0) {
    if (loop_.now() >= hop.answer_expires) resolve_mx(hop);  // may answer (and pump) at once from the cache
    else if (hop.answer->outcome == routing::dns::DnsOutcome::kPermanent || hop.no_hosts_reason.find("loops back") != std::string::npos)
      on_mx(hop, hop.answer);  // still permanent: fail what was just queued
  }
  pump(hop);
}

void Delivery::schedule(NextHop& hop, QueuedWork qw, MonoTime due) {
  deferred_.push_back({due, &hop, std::move(qw)});
  std::push_heap(deferred_.begin(), deferred_.end(), DeferredWork::later);
}

void Delivery::park(NextHop& hop, DeliveryWork* w) {
  hop.parked.push_back({std::move(w->msg), IndexList(w->rcpts)});
  delete w;
}

bool Delivery::hop_open(const NextHop& hop) const {
  return !stopping_ && !hop.suspended && !hop.hosts.empty() && !hop.health.in_retry(loop_.now());
}

void Delivery::refill(NextHop& hop) {
  if (!hop_open(hop)) return;
  // Bodies are read ahead only as far as sessions can use them, so a huge backlog costs no memory.
  size_t window = std::max<size_t>(4, 2 * static_cast<size_t>(hop.connector->max_connections_per_destination));
  while (!hop.waiting.empty() && hop.loading + hop.ready.size() < window) {
    QueuedWork qw = std::move(hop.waiting.front());
    hop.waiting.pop_front();
    if (qw.msg->suspended.load(std::memory_order_relaxed)) {
      hop.parked.push_back(std::move(qw));
      continue;
    }
    load(hop, std::move(qw));
  }
}

void Delivery::pump(NextHop& hop) {
  if (!hop_open(hop)) return;
  refill(hop);
  while (!hop.ready.empty() && !hop.idle.empty()) {
    OutboundSession* s = hop.idle.back();
    s->offer();  // takes from hop.ready, or leaves the idle list
    if (!hop.idle.empty() && hop.idle.back() == s) break;  // it did not take work
  }
  // Open sessions for the work that is ready (one per ready transaction not already promised to a
  // session that is still opening, within both caps). A destination marked down gets one probe
  // session until a delivery through it works.
  size_t wanted = hop.ready.size() > hop.opening ? hop.ready.size() - hop.opening : 0;
  unsigned limit = hop.health.session_limit(hop.connector->max_connections_per_destination);
  if (hop.answer && wanted > 0 && hop.resolving == 0 && loop_.now() >= hop.answer_expires) {
    resolve_mx(hop);  // the TTL ran out: the cache answers at once or the lookup runs meanwhile
    if (!hop_open(hop)) return;
  }
  while (wanted > 0 && hop.sessions < limit &&
         shared_.outbound.load(std::memory_order_relaxed) < shared_.max_outbound) {
    shared_.outbound.fetch_add(1, std::memory_order_relaxed);
    ++hop.sessions;
    ++hop.opening;
    if (hop.answer && hop.health.failures_in_walk() == 0) {
      // A fresh walk of the MX list for each new session: equal preferences shuffled at use time.
      bool loop = false;
      std::vector<std::string> names;
      auto addrs = mx_addresses(hop, &loop, &names);
      if (!addrs.empty()) {
        hop.hosts = std::move(addrs);
        hop.host_names = std::move(names);
        hop.cursor = 0;
      }
    }
    size_t at = hop.cursor % hop.hosts.size();
    auto* s = new OutboundSession(*this, hop, hop.hosts[at], at < hop.host_names.size() ? hop.host_names[at] : std::string());
    sessions_.push_back(s);
    s->start();
    --wanted;
  }
  // Fairness under the global session cap: a queue that wanted a session and found every slot
  // taken waits in line; freed slots go to the line first, and busy queues stop reusing their
  // sessions for more mail while it is not empty (see take_ready), so a huge backlog cannot
  // starve small destinations.
  if (wanted > 0 && hop.sessions < limit && hop.sessions == 0 && !hop.starved) {
    hop.starved = true;
    starved_.push_back(&hop);
    shared_.starved.fetch_add(1, std::memory_order_relaxed);
  }
}

void Delivery::serve_starved() {
  while (!starved_.empty() && shared_.outbound.load(std::memory_order_relaxed) < shared_.max_outbound) {
    NextHop* hop = starved_.front();
    starved_.pop_front();
    shared_.starved.fetch_sub(1, std::memory_order_relaxed);
    hop->starved = false;
    pump(*hop);
    if (hop->starved) break;  // queued again: no slot after all
  }
}

void Delivery::load(NextHop& hop, QueuedWork qw) {
  auto* w = new DeliveryWork();
  w->hop = &hop;
  w->msg = std::move(qw.msg);
  w->rcpts = qw.rcpts.to_vector();
  w->delivery = this;
  w->read_op.work = w;
  ++hop.loading;
  w->record.resize(w->msg->location.record_len);
  shared_.spool->read_message(w->msg->location, w->record.data(), io_, &w->read_op);
}

// The transaction's recipients, with the RFC 3461 parameters received on the listener, which go on
// to a next hop that announces DSN (the client session sends them only then).
void Delivery::set_recipients(DeliveryWork& w) {
  const auto& env = w.msg->env;
  w.txn.recipients.clear();
  if (!env.has_dsn_params()) {  // the usual case: nothing to format
    w.txn.dsn_mail_params.clear();
    for (uint32_t r : w.rcpts) w.txn.recipients.push_back({env.rcpts[r], {}});
    return;
  }
  auto drop_space = [](std::string s) { return s.empty() ? s : s.substr(1); };
  queue::dsn::MailParams mp;
  mp.ret = static_cast<queue::dsn::Ret>(env.dsn_ret);
  mp.envid = env.envid;
  mp.has_envid = !env.envid.empty();
  w.txn.dsn_mail_params = drop_space(queue::dsn::format_mail_params(mp));
  for (uint32_t r : w.rcpts) {
    std::string params;
    if (r < env.rcpt_dsn.size()) {
      queue::dsn::RcptParams rp;
      rp.notify = env.rcpt_dsn[r].notify;
      rp.orcpt = {env.rcpt_dsn[r].orcpt_type, env.rcpt_dsn[r].orcpt};
      params = drop_space(queue::dsn::format_rcpt_params(rp));
    }
    w.txn.recipients.push_back({env.rcpts[r], std::move(params)});
  }
}

void Delivery::on_loaded(DeliveryWork* w, int result) {
  NextHop& hop = *w->hop;
  --hop.loading;
  if (stopping_) {
    hop.ready.push_back(w);  // freed with the hop's queues; its recipients stay queued in the spool
    maybe_stopped();
    return;
  }
  auto decoded = result >= 0 ? queue::decode_message(w->record.data(), w->record.size(), w->msg->location)
                             : Result<queue::StoredMessage>(make_error("read failed: {}", std::strerror(-result)));
  std::vector<uint8_t>().swap(w->record);
  if (w->msg->removed.load(std::memory_order_acquire)) {  // removed while its body was being read
    for (uint32_t r : w->rcpts) finish(w->msg, r, queue::RcptState::kFailed);
    delete w;
    pump(hop);
    return;
  }
  if (!decoded) {
    log::error("{}: cannot read the message back from the spool: {}", queue::format_queue_id(w->msg->env.id),
               decoded.error().message());
    defer(hop, w->msg, std::move(w->rcpts), "spool read failed", {}, {});
    delete w;
    return;
  }
  w->body = std::move(decoded->body);
  const auto& env = w->msg->env;
  w->txn.mail_from = env.mail_from;
  set_recipients(*w);
  w->txn.body = w->body;
  w->txn.size = w->body.size();
  // "Needed" means the octets, not what the client declared: a BODY=8BITMIME message that is
  // 7-bit clean may go to a server without 8BITMIME; an 8-bit body never may (RFC 6152).
  w->txn.body_8bit = std::any_of(w->body.begin(), w->body.end(), [](char ch) { return (ch & 0x80) != 0; });
  w->txn.smtputf8 = env.flags & queue::kEnvelopeSmtpUtf8;
  hop.ready.push_back(w);
  pump(hop);
}

DeliveryWork* Delivery::take_ready(NextHop& hop) {
  if (stopping_ || hop.suspended || hop.ready.empty()) return nullptr;
  // Queues (on any worker) wait for a slot: this session goes idle and yields it.
  if (shared_.starved.load(std::memory_order_relaxed) > 0) return nullptr;
  DeliveryWork* w = hop.ready.front();
  hop.ready.pop_front();
  while (w->msg->suspended.load(std::memory_order_relaxed)) {
    park(hop, w);
    if (hop.ready.empty()) return nullptr;
    w = hop.ready.front();
    hop.ready.pop_front();
  }
  w->retry_now.clear();
  w->defer.clear();
  // Keep the read-ahead window full. Not pump(): we are inside a session's hook, and pump() may
  // offer work to sessions, which must never re-enter one that is in the middle of an event.
  refill(hop);
  return w;
}

void Delivery::finish(const queue::MessageRef& msg, uint32_t rcpt, queue::RcptState state) {
  auto& rs = msg->rcpts[rcpt];
  rs.state = state;
  rs.attempts++;
  journal_->record({msg->env.id, rcpt, state, rs.attempts, {}, rs.flags});
  if (msg->finish_recipient()) {
    shared_.spool->release_message(msg->location);
    shared_.messages_done.fetch_add(1, std::memory_order_relaxed);
  }
}

void Delivery::on_recipient_result(DeliveryWork& work, size_t txn_index, const smtp::DeliveryOutcome& outcome,
                                   const std::string& host, bool next_hop_dsn) {
  NextHop& hop = *work.hop;
  uint32_t rcpt = work.rcpts[txn_index];
  bool more_hosts = hop.health.failures_in_walk() + 1 < hop.hosts.size();
  const auto& env = work.msg->env;
  switch (smtp::disposition(outcome, more_hosts)) {
    case smtp::Disposition::kDelivered:
      mark_up(hop);
      shared_.delivered.fetch_add(1, std::memory_order_relaxed);
      log::debug("{} <{}>: delivered via {} ({}): {}", queue::format_queue_id(env.id), env.rcpts[rcpt],
                 hop.connector->name, host, smtp::describe(outcome));
      if (tracking_)
        tracking_->deliver(env.id, env.rcpts[rcpt], hop.connector->name, host, smtp::describe(outcome),
                           work.msg->rcpts[rcpt].attempts + 1);
      finish(work.msg, rcpt, queue::RcptState::kDelivered);
      if (!next_hop_dsn && rcpt < env.rcpt_dsn.size() && (env.rcpt_dsn[rcpt].notify & queue::dsn::kNotifySuccess)) {
        work.relayed.push_back({rcpt, "2.0.0", diagnostic_of(outcome)});
        work.remote = host;
      }
      break;
    case smtp::Disposition::kFailed:
      shared_.failed.fetch_add(1, std::memory_order_relaxed);
      log::info("{} <{}>: failed via {} ({}): {}", queue::format_queue_id(env.id), env.rcpts[rcpt],
                hop.connector->name, host, smtp::describe(outcome));
      if (tracking_)
        tracking_->bounce(env.id, env.rcpts[rcpt], hop.connector->name, host, status_of(outcome),
                          smtp::describe(outcome));
      finish(work.msg, rcpt, queue::RcptState::kFailed);
      work.bounced.push_back({rcpt, status_of(outcome), diagnostic_of(outcome)});
      work.remote = host;
      break;
    case smtp::Disposition::kDeferred:
      work.defer.push_back(rcpt);
      work.defer_reason = smtp::describe(outcome);
      work.remote = host;
      break;
    case smtp::Disposition::kTryNextHost:
      work.retry_now.push_back(rcpt);
      break;
  }
}

void Delivery::on_transaction_done(DeliveryWork& work) {
  NextHop& hop = *work.hop;
  if (!work.bounced.empty()) {
    send_dsn(*work.msg, queue::dsn::ReportKind::kFailure, work.bounced, work.remote, work.body);
    work.bounced.clear();
  }
  if (!work.relayed.empty()) {
    send_dsn(*work.msg, queue::dsn::ReportKind::kSuccess, work.relayed, work.remote, work.body);
    work.relayed.clear();
  }
  if (!work.defer.empty()) {
    defer(hop, work.msg, std::move(work.defer), work.defer_reason, work.remote, work.body);
    work.defer.clear();
  }
  if (!work.retry_now.empty()) {
    // Same body, other host: back to the front of the queue, no attempt counted.
    work.rcpts = std::move(work.retry_now);
    work.retry_now.clear();
    set_recipients(work);
    hop.ready.push_front(&work);
    return;  // on_session_result() moves the cursor to the next host and pumps
  }
  delete &work;
  pump(hop);
}

// Counts the attempt and schedules the next one. A recipient whose message has expired fails with
// a DSN instead; one that has waited past the delay-notice time gets one delay DSN (the journal
// remembers it was sent). A removed message's recipients fail silently here.
void Delivery::defer(NextHop& hop, const queue::MessageRef& msg, std::vector<uint32_t> rcpts, const std::string& why,
                     const std::string& remote, std::string_view body) {
  const auto& env = msg->env;
  auto wall_now = std::chrono::system_clock::now();
  bool removed = msg->removed.load(std::memory_order_acquire);
  double jitter = std::uniform_real_distribution<double>(0, 1)(rng_);
  std::vector<DeliveryWork::Bounce> expired, delayed;
  std::vector<uint32_t> keep;
  queue::RetryDecision next;  // of the recipient with the most attempts (they share one schedule)
  uint32_t attempts = 0;
  for (uint32_t r : rcpts) {
    auto& rs = msg->rcpts[r];
    auto d = queue::decide_retry(hop.retry, env.arrival, rs.attempts + 1, rs.flags & queue::kRcptDelayNotified,
                                 wall_now, jitter);
    if (removed) {
      finish(msg, r, queue::RcptState::kFailed);
    } else if (d.expired) {
      finish(msg, r, queue::RcptState::kFailed);
      shared_.expired.fetch_add(1, std::memory_order_relaxed);
      expired.push_back({r, "4.4.7", fmt::format("x-ringmail; delivery time expired; last error: {}", why)});
    } else {
      rs.attempts++;
      if (d.delay_notice) {
        rs.flags |= queue::kRcptDelayNotified;
        delayed.push_back({r, "4.4.7", fmt::format("x-ringmail; {}", why)});
      }
      if (rs.attempts >= attempts) {
        attempts = rs.attempts;
        next = d;
      }
      keep.push_back(r);
    }
  }
  if (!expired.empty()) {
    log::info("{}: {} recipient(s) expired (the message arrived {} h ago): {}", queue::format_queue_id(env.id),
              expired.size(), duration_cast<hours>(wall_now - env.arrival).count(), why);
    if (tracking_) {
      std::vector<std::string_view> to;
      for (const auto& b : expired) to.push_back(env.rcpts[b.rcpt]);
      tracking_->expire(env.id, to, why);
    }
    send_dsn(*msg, queue::dsn::ReportKind::kFailure, expired, remote, body);
  }
  if (!delayed.empty()) send_dsn(*msg, queue::dsn::ReportKind::kDelay, delayed, remote, body, &hop.retry);
  if (keep.empty()) return;
  for (uint32_t r : keep) {
    auto& rs = msg->rcpts[r];
    rs.state = queue::RcptState::kDeferred;
    rs.next_attempt = next.next_attempt;
    journal_->record({env.id, r, queue::RcptState::kDeferred, rs.attempts, next.next_attempt, rs.flags});
    shared_.deferred.fetch_add(1, std::memory_order_relaxed);
  }
  log::info("{}: {} recipient(s) deferred via {} (attempt {}, retry in {} s): {}", queue::format_queue_id(env.id),
            keep.size(), hop.connector->name, attempts, duration_cast<seconds>(next.delay).count(), why);
  if (tracking_) {
    std::vector<std::string_view> to;
    for (uint32_t r : keep) to.push_back(env.rcpts[r]);
    tracking_->defer(env.id, to, hop.connector->name, remote, attempts, duration_cast<seconds>(next.delay).count(), why);
  }
  schedule(hop, {msg, IndexList(keep)}, loop_.now() + next.delay);
}

void Delivery::defer_all(NextHop& hop, const std::string& host) {
  while (!hop.ready.empty()) {
    DeliveryWork* w = hop.ready.front();
    hop.ready.pop_front();
    defer(hop, w->msg, std::move(w->rcpts), hop.last_error, host, w->body);
    delete w;
  }
  while (!hop.waiting.empty()) {
    QueuedWork qw = std::move(hop.waiting.front());
    hop.waiting.pop_front();
    defer(hop, qw.msg, qw.rcpts.to_vector(), hop.last_error, host, {});
  }
}

void Delivery::mark_up(NextHop& hop) {
  if (hop.health.delivered()) log::info("next hop {} / {}: reachable again", hop.connector->name, hop.destination);
}

void Delivery::on_session_result(NextHop& hop, const smtp::DeliveryOutcome& outcome, const std::string& host) {
  if (outcome.kind == smtp::OutcomeKind::kTryNextHost) {
    hop.last_error = fmt::format("{}: {}", host, smtp::describe(outcome));
    log::info("next hop {} / {}: {}; trying the next host", hop.connector->name, hop.destination, hop.last_error);
    auto verdict = hop.health.host_failed(loop_.now(), hop.hosts.size(), hop.retry,
                                          std::uniform_real_distribution<double>(0, 1)(rng_));
    if (verdict == DestinationHealth::Failure::kAlreadyDown) {
      // Already marked down by another session of the same cohort: its work waits with the rest.
      defer_all(hop, host);
      return;
    }
    ++hop.cursor;
    if (verdict == DestinationHealth::Failure::kMarkedDown) {
      // Every host failed in a row: the destination is down (Postfix's dead destination). What
      // waits is deferred instead of hammering it; at the retry time one probe session goes out,
      // and only when it works do the others follow. Each round down backs off further.
      log::warn("next hop {} / {}: all {} hosts failed; marked down, probe in {} s", hop.connector->name,
                hop.destination, hop.hosts.size(),
                duration_cast<seconds>(hop.health.retry_at() - loop_.now()).count());
      defer_all(hop, host);
    }
  } else if (outcome.ok()) {
    mark_up(hop);
  }
  pump(hop);
}

void Delivery::session_idle(NextHop& hop, OutboundSession* s) {
  hop.idle.push_back(s);
  if (shared_.starved.load(std::memory_order_relaxed) > 0) {
    // Another queue waits for a session slot: close this idle one (after the current event, as a
    // hook must not re-enter the session) so its slot goes to the line.
    loop_.defer([this, h = &hop, s] {
      if (std::find(h->idle.begin(), h->idle.end(), s) != h->idle.end()) s->shutdown();
    });
    return;
  }
  if (!hop.ready.empty()) pump(hop);
}

void Delivery::session_busy(NextHop& hop, OutboundSession* s) {
  auto it = std::find(hop.idle.begin(), hop.idle.end(), s);
  if (it != hop.idle.end()) hop.idle.erase(it);
}

void Delivery::session_released(NextHop& hop, OutboundSession* s) {
  session_busy(hop, s);
  sessions_.erase(std::find(sessions_.begin(), sessions_.end(), s));
  delete s;
  --hop.sessions;
  shared_.outbound.fetch_sub(1, std::memory_order_relaxed);
  if (stopping_) {
    maybe_stopped();
    return;
  }
  serve_starved();
  pump(hop);
}

void Delivery::on_tick() {
  journal_->poll();
  auto now = loop_.now();
  while (!deferred_.empty() && deferred_.front().due <= now && !stopping_) {
    std::pop_heap(deferred_.begin(), deferred_.end(), DeferredWork::later);
    DeferredWork d = std::move(deferred_.back());
    deferred_.pop_back();
    d.hop->waiting.push_back(std::move(d.work));
  }
  if (!stopping_) {
    serve_starved();
    for (auto& [key, hop] : hops_) {
      if (hop->hosts.empty() && hop->resolving == 0 && !hop->health.in_retry(now) && !hop->waiting.empty()) {
        if (hop->connector->smart_hosts.empty()) resolve_mx(*hop);
        else resolve_hosts(*hop);
      }
      if (!hop->waiting.empty() || !hop->ready.empty()) pump(*hop);
    }
    loop_.timers().arm(tick_, now, kTickInterval);
  }
}

void Delivery::stop(std::function<void()> done) {
  stopping_ = true;
  stop_done_ = std::move(done);
  loop_.timers().cancel(tick_);
  auto sessions = sessions_;
  for (auto* s : sessions) s->shutdown();
  // Sessions in the middle of a transaction finish it (the message may already be at the server)
  // and QUIT; whatever is still busy when the grace period ends is cut and retried after restart.
  if (!sessions_.empty()) loop_.timers().arm(stop_grace_, loop_.now(), shared_.shutdown_grace);
  maybe_stopped();
}

void Delivery::on_stop_grace() {
  if (!sessions_.empty())
    log::warn("shutdown: cutting {} outbound sessions still busy after {} s; their messages are retried after "
              "restart", sessions_.size(), shared_.shutdown_grace.count());
  auto sessions = sessions_;
  for (auto* s : sessions) s->shutdown(/*now=*/true);
  maybe_stopped();
}

void Delivery::maybe_stopped() {
  if (!stopping_ || !sessions_.empty() || journal_closing_ || !stop_done_) return;
  loop_.timers().cancel(stop_grace_);
  // Body reads still in flight write into buffers we own: wait for them too.
  for (const auto& [key, hop] : hops_)
    if (hop->loading > 0) return;
  journal_closing_ = true;
  journal_->close([this] {
    auto done = std::move(stop_done_);
    done();
  });
}

}  // namespace ringmail::engine
