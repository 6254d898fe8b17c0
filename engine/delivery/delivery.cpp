// Delivery implementation (see delivery.h). Failure policy lives in engine/smtp/delivery_outcome;
// this file only carries it out: delivered/failed are final and journaled, deferred recipients
// come back after the back-off, "try next host" moves the next hop's cursor, and a next hop whose
// every host failed in a row waits (Retry) instead of hammering it.
#include "engine/delivery/delivery.h"

#include <algorithm>
#include <functional>

#include "common/log.h"
#include "common/strings.h"
#include "engine/delivery/outbound_session.h"
#include "queue/spool_scan.h"

namespace ringmail::engine {
namespace {
using namespace std::chrono;
constexpr auto kTickInterval = milliseconds(100);

std::string domain_of(std::string_view address) {
  auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : to_lower_ascii(address.substr(at + 1));
}
}  // namespace

void dispatch_message(DeliveryShared& shared, const std::shared_ptr<const routing::Table>& table,
                      const queue::MessageRef& msg) {
  struct Group {
    const routing::Connector* connector;
    std::string destination;
    std::vector<uint32_t> rcpts;
  };
  std::map<std::string, Group> groups;  // by next-hop key; a handful per message
  uint64_t size = msg->location.body_len;
  for (uint32_t i = 0; i < msg->env.rcpts.size(); ++i) {
    if (queue::is_final(msg->rcpts[i].state)) continue;
    std::string domain = domain_of(msg->env.rcpts[i]);
    routing::Selection sel;
    const routing::Connector* c = table->select(domain, size, &sel);
    if (!c) {
      shared.unreachable.fetch_add(1, std::memory_order_relaxed);
      log::warn("{} <{}>: no connector ({}); held in the Unreachable queue", queue::format_queue_id(msg->env.id),
                msg->env.rcpts[i], routing::unreachable_reason(sel.unreachable));
      continue;
    }
    // Smart-host connectors form one next hop; DNS-routed ones one per recipient domain.
    std::string destination = c->smart_hosts.empty() ? domain : std::string("smart hosts");
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
}

void DeliveryWork::ReadOp::complete(int result) { work->delivery->on_loaded(work, result); }

Delivery::Delivery(unsigned id, Loop& loop, queue::FileIo& io, DeliveryShared& shared)
    : id_(id), loop_(loop), io_(io), shared_(shared), rng_(0x9e3779b97f4a7c15ull ^ id) {}

Delivery::~Delivery() {
  for (auto& [t, w] : deferred_) delete w;
  for (auto& [k, hop] : hops_) {
    for (auto* w : hop->waiting) delete w;
    for (auto* w : hop->ready) delete w;
  }
}

Status Delivery::start() {
  auto j = shared_.spool->make_journal(id_, io_, SystemClock::instance());
  if (!j) return j.error();
  journal_ = std::move(*j);
  auto r = Resolver::create(loop_);
  if (!r) return r.error();
  resolver_ = std::move(*r);
  loop_.timers().arm(tick_, loop_.now(), kTickInterval);
  return {};
}

NextHop& Delivery::hop_for(std::shared_ptr<const routing::Table> table, const routing::Connector* c,
                           const std::string& key, const std::string& destination) {
  auto it = hops_.find(key);
  if (it != hops_.end()) {
    if (it->second->table != table && it->second->sessions == 0) {
      // A reload replaced the table: take the new connector settings when no session uses the old.
      it->second->table = std::move(table);
      it->second->connector = c;
    }
    return *it->second;
  }
  auto hop = std::make_unique<NextHop>();
  hop->key = key;
  hop->table = std::move(table);
  hop->connector = c;
  hop->destination = destination;
  hop->client.helo_name = c->fqdn.empty() ? shared_.hostname : c->fqdn;
  hop->client.max_recipients_per_transaction = c->max_recipients_per_transaction;
  hop->client.max_messages_per_connection = c->max_messages_per_connection;
  hop->client.idle_timeout = std::chrono::duration_cast<std::chrono::seconds>(c->connection_idle_timeout);
  const auto& t = c->timeouts;
  hop->client.timeouts = {t.connect, t.greeting, t.helo, t.mail, t.rcpt, t.data_init, t.data_block, t.final_dot,
                          t.quit, t.quit};
  auto& ref = *hop;
  hops_.emplace(key, std::move(hop));
  if (c->smart_hosts.empty()) {
    ref.no_hosts_reason = "DNS MX routing arrives with the resolver issue; mail for it is held";
    log::warn("next hop {} / {}: {}", c->name, destination, ref.no_hosts_reason);
  } else {
    resolve_hosts(ref);
  }
  return ref;
}

// Smart hosts in the connector's order: IP literals at once, names through c-ares on this ring
// (resolved once per next hop; a failed lookup is retried with the back-off). Addresses keep the
// order the resolver gives within a name.
void Delivery::resolve_hosts(NextHop& hop) {
  const routing::Connector* c = hop.connector;
  hop.hosts.clear();
  auto results = std::make_shared<std::vector<std::vector<SocketAddress>>>(c->smart_hosts.size());
  for (size_t i = 0; i < c->smart_hosts.size(); ++i) {
    const auto& sh = c->smart_hosts[i];
    uint16_t port = sh.port ? sh.port : c->port;
    if (sh.is_ip_literal) {
      if (auto addr = SocketAddress::parse(sh.host, port)) (*results)[i].push_back(*addr);
      continue;
    }
    ++hop.resolving;
    NextHop* h = &hop;
    resolver_->resolve(sh.host, port, [this, h, i, results, name = sh.host](Result<std::vector<SocketAddress>> r) {
      if (r) {
        (*results)[i] = std::move(*r);
      } else {
        log::warn("next hop {}: smart host '{}' does not resolve: {}", h->connector->name, name, r.error().message());
        h->no_hosts_reason = fmt::format("smart host '{}' does not resolve: {}", name, r.error().message());
      }
      if (--h->resolving > 0) return;
      h->hosts.clear();
      for (auto& list : *results) h->hosts.insert(h->hosts.end(), list.begin(), list.end());
      if (h->hosts.empty()) {
        // Nothing to connect to: try the names again after the back-off; the mail waits.
        h->retry_at = loop_.now() + queue::retry_delay(shared_.retry, 1, 0.5);
        return;
      }
      h->no_hosts_reason.clear();
      pump(*h);
    });
  }
  if (hop.resolving == 0) {
    for (auto& list : *results) hop.hosts.insert(hop.hosts.end(), list.begin(), list.end());
  }
}

void Delivery::enqueue(std::shared_ptr<const routing::Table> table, const routing::Connector* connector,
                       std::string key, std::string destination, queue::MessageRef msg, std::vector<uint32_t> rcpts) {
  NextHop& hop = hop_for(std::move(table), connector, key, destination);
  // One transaction carries at most the connector's recipient cap; more recipients of the same
  // message become further transactions right away (each reads the body on its own).
  size_t cap = std::max<size_t>(1, hop.client.max_recipients_per_transaction);
  for (size_t first = 0; first < rcpts.size(); first += cap) {
    auto* w = new DeliveryWork();
    w->hop = &hop;
    w->msg = msg;
    w->rcpts.assign(rcpts.begin() + static_cast<std::ptrdiff_t>(first),
                    rcpts.begin() + static_cast<std::ptrdiff_t>(std::min(rcpts.size(), first + cap)));
    w->delivery = this;
    w->read_op.work = w;
    hop.waiting.push_back(w);
  }
  pump(hop);
}

void Delivery::refill(NextHop& hop) {
  if (stopping_ || hop.hosts.empty() || loop_.now() < hop.retry_at) return;
  // Bodies are read ahead only as far as sessions can use them, so a huge backlog costs no memory.
  size_t window = std::max<size_t>(4, 2 * static_cast<size_t>(hop.connector->max_connections_per_destination));
  while (!hop.waiting.empty() && hop.loading + hop.ready.size() < window) {
    DeliveryWork* w = hop.waiting.front();
    hop.waiting.pop_front();
    load(w);
  }
}

void Delivery::pump(NextHop& hop) {
  if (stopping_ || hop.hosts.empty() || loop_.now() < hop.retry_at) return;
  refill(hop);
  while (!hop.ready.empty() && !hop.idle.empty()) {
    OutboundSession* s = hop.idle.back();
    s->offer();  // takes from hop.ready, or leaves the idle list
    if (!hop.idle.empty() && hop.idle.back() == s) break;  // it did not take work
  }
  // Open sessions for the work that is ready (one per ready transaction, within both caps).
  size_t wanted = hop.ready.size();
  while (wanted > 0 && hop.sessions < hop.connector->max_connections_per_destination &&
         shared_.outbound.load(std::memory_order_relaxed) < shared_.max_outbound) {
    shared_.outbound.fetch_add(1, std::memory_order_relaxed);
    ++hop.sessions;
    const SocketAddress& host = hop.hosts[hop.cursor % hop.hosts.size()];
    auto* s = new OutboundSession(*this, hop, host);
    sessions_.push_back(s);
    s->start();
    --wanted;
  }
}

void Delivery::load(DeliveryWork* w) {
  ++w->hop->loading;
  w->record.resize(w->msg->location.record_len);
  shared_.spool->read_message(w->msg->location, w->record.data(), io_, &w->read_op);
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
  if (!decoded) {
    log::error("{}: cannot read the message back from the spool: {}", queue::format_queue_id(w->msg->env.id),
               decoded.error().message());
    defer_work(w, "spool read failed");
    return;
  }
  w->body = std::move(decoded->body);
  const auto& env = w->msg->env;
  w->txn.mail_from = env.mail_from;
  w->txn.recipients.clear();
  for (uint32_t r : w->rcpts) w->txn.recipients.push_back({env.rcpts[r], {}});
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
  if (stopping_ || hop.ready.empty()) return nullptr;
  DeliveryWork* w = hop.ready.front();
  hop.ready.pop_front();
  w->retry_now.clear();
  w->defer.clear();
  // Keep the read-ahead window full. Not pump(): we are inside a session's hook, and pump() may
  // offer work to sessions, which must never re-enter one that is in the middle of an event.
  refill(hop);
  return w;
}

void Delivery::finish(DeliveryWork& work, uint32_t rcpt, queue::RcptState state) {
  auto& rs = work.msg->rcpts[rcpt];
  rs.state = state;
  rs.attempts++;
  journal_->record({work.msg->env.id, rcpt, state, rs.attempts, {}});
  if (work.msg->finish_recipient()) {
    shared_.spool->release_message(work.msg->location);
    shared_.messages_done.fetch_add(1, std::memory_order_relaxed);
  }
}

void Delivery::on_recipient_result(DeliveryWork& work, size_t txn_index, const smtp::DeliveryOutcome& outcome,
                                   const std::string& host) {
  NextHop& hop = *work.hop;
  uint32_t rcpt = work.rcpts[txn_index];
  bool more_hosts = hop.consecutive_failures + 1 < hop.hosts.size();
  const auto& env = work.msg->env;
  switch (smtp::disposition(outcome, more_hosts)) {
    case smtp::Disposition::kDelivered:
      hop.consecutive_failures = 0;
      shared_.delivered.fetch_add(1, std::memory_order_relaxed);
      log::debug("{} <{}>: delivered via {} ({}): {}", queue::format_queue_id(env.id), env.rcpts[rcpt],
                 hop.connector->name, host, smtp::describe(outcome));
      finish(work, rcpt, queue::RcptState::kDelivered);
      break;
    case smtp::Disposition::kFailed:
      shared_.failed.fetch_add(1, std::memory_order_relaxed);
      log::info("{} <{}>: failed via {} ({}): {}", queue::format_queue_id(env.id), env.rcpts[rcpt],
                hop.connector->name, host, smtp::describe(outcome));
      finish(work, rcpt, queue::RcptState::kFailed);
      break;
    case smtp::Disposition::kDeferred:
      work.defer.push_back(rcpt);
      work.defer_reason = smtp::describe(outcome);
      break;
    case smtp::Disposition::kTryNextHost:
      work.retry_now.push_back(rcpt);
      break;
  }
}

void Delivery::on_transaction_done(DeliveryWork& work) {
  NextHop& hop = *work.hop;
  if (!work.defer.empty()) {
    auto* d = new DeliveryWork();
    d->hop = &hop;
    d->msg = work.msg;
    d->rcpts = std::move(work.defer);
    d->delivery = this;
    d->read_op.work = d;
    defer_work(d, work.defer_reason);
  }
  if (!work.retry_now.empty()) {
    // Same body, other host: back to the front of the queue, no attempt counted.
    work.rcpts = std::move(work.retry_now);
    work.retry_now.clear();
    work.txn.recipients.clear();
    for (uint32_t r : work.rcpts) work.txn.recipients.push_back({work.msg->env.rcpts[r], {}});
    hop.ready.push_front(&work);
    return;  // on_session_result() moves the cursor to the next host and pumps
  }
  delete &work;
  pump(hop);
}

void Delivery::defer_work(DeliveryWork* w, const std::string& why) {
  uint32_t attempts = 0;
  for (uint32_t r : w->rcpts) {
    auto& rs = w->msg->rcpts[r];
    rs.attempts++;
    attempts = std::max(attempts, rs.attempts);
  }
  auto delay = queue::retry_delay(shared_.retry, attempts, std::uniform_real_distribution<double>(0, 1)(rng_));
  auto next_wall = std::chrono::system_clock::now() + delay;
  for (uint32_t r : w->rcpts) {
    auto& rs = w->msg->rcpts[r];
    rs.state = queue::RcptState::kDeferred;
    rs.next_attempt = next_wall;
    journal_->record({w->msg->env.id, r, queue::RcptState::kDeferred, rs.attempts, next_wall});
    shared_.deferred.fetch_add(1, std::memory_order_relaxed);
  }
  log::info("{}: {} recipient(s) deferred via {} (attempt {}, retry in {} s): {}",
            queue::format_queue_id(w->msg->env.id), w->rcpts.size(), w->hop->connector->name, attempts,
            duration_cast<seconds>(delay).count(), why);
  w->body.clear();
  w->body.shrink_to_fit();  // a deferred message costs no body memory while it waits
  w->due = loop_.now() + delay;
  deferred_.emplace(w->due, w);
}

void Delivery::on_session_result(NextHop& hop, const smtp::DeliveryOutcome& outcome, const std::string& host) {
  if (outcome.kind == smtp::OutcomeKind::kTryNextHost) {
    hop.last_error = fmt::format("{}: {}", host, smtp::describe(outcome));
    ++hop.consecutive_failures;
    ++hop.cursor;
    log::info("next hop {} / {}: {}; trying the next host", hop.connector->name, hop.destination, hop.last_error);
    if (hop.consecutive_failures >= hop.hosts.size()) {
      // Every host failed in a row: the destination is down. Defer what waits instead of hammering
      // it (Postfix's dead-destination idea); a probe session goes out at the retry time.
      auto delay = queue::retry_delay(shared_.retry, hop.consecutive_failures / std::max<size_t>(1, hop.hosts.size()),
                                      std::uniform_real_distribution<double>(0, 1)(rng_));
      hop.retry_at = loop_.now() + delay;
      log::warn("next hop {} / {}: all {} hosts failed; retry in {} s", hop.connector->name, hop.destination,
                hop.hosts.size(), duration_cast<seconds>(delay).count());
      while (!hop.ready.empty()) {
        defer_work(hop.ready.front(), hop.last_error);
        hop.ready.pop_front();
      }
      while (!hop.waiting.empty()) {
        defer_work(hop.waiting.front(), hop.last_error);
        hop.waiting.pop_front();
      }
      hop.consecutive_failures = 0;
    }
  } else if (outcome.ok()) {
    hop.consecutive_failures = 0;
  }
  pump(hop);
}

void Delivery::session_idle(NextHop& hop, OutboundSession* s) {
  hop.idle.push_back(s);
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
  if (stopping_) maybe_stopped();
  else pump(hop);
}

void Delivery::on_tick() {
  journal_->poll();
  auto now = loop_.now();
  while (!deferred_.empty() && deferred_.begin()->first <= now && !stopping_) {
    DeliveryWork* w = deferred_.begin()->second;
    deferred_.erase(deferred_.begin());
    w->hop->waiting.push_back(w);
  }
  if (!stopping_) {
    for (auto& [key, hop] : hops_) {
      if (hop->hosts.empty() && hop->resolving == 0 && !hop->connector->smart_hosts.empty() &&
          now >= hop->retry_at && !hop->waiting.empty())
        resolve_hosts(*hop);
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
  maybe_stopped();
}

void Delivery::maybe_stopped() {
  if (!stopping_ || !sessions_.empty() || journal_closing_ || !stop_done_) return;
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
