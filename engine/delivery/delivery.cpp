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

std::string queue_id_of(const NextHop& hop) { return hop.connector->name + ":" + hop.destination; }

// deferred_ is a min-heap on the retry time.
bool later(const DeferredWork& a, const DeferredWork& b) { return a.due > b.due; }
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

queue::RetryPolicy Delivery::policy_for(const routing::Connector& c) const {
  queue::RetryPolicy p = shared_.retry;
  if (c.retry.min) p.min_backoff = *c.retry.min;
  if (c.retry.max) p.max_backoff = *c.retry.max;
  if (p.max_backoff < p.min_backoff) p.max_backoff = p.min_backoff;  // a connector's min above the daemon's max
  if (c.retry.expiration) p.message_expiration = *c.retry.expiration;
  if (c.retry.delay_notice) p.delay_notice = *c.retry.delay_notice;
  return p;
}

NextHop& Delivery::hop_for(std::shared_ptr<const routing::Table> table, const routing::Connector* c,
                           const std::string& key, const std::string& destination) {
  auto it = hops_.find(key);
  if (it != hops_.end()) {
    if (it->second->table != table && it->second->sessions == 0) {
      // A reload replaced the table: take the new connector settings when no session uses the old.
      it->second->table = std::move(table);
      it->second->connector = c;
      it->second->retry = policy_for(*c);
    }
    return *it->second;
  }
  auto hop = std::make_unique<NextHop>();
  hop->key = key;
  hop->table = std::move(table);
  hop->connector = c;
  hop->destination = destination;
  hop->retry = policy_for(*c);
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
    resolve_mx(ref);
  } else {
    resolve_hosts(ref);
  }
  return ref;
}

// DNS-routed next hops: the MX answer from this worker's cache (at once on a hit), else later.
void Delivery::resolve_mx(NextHop& hop) {
  if (hop.resolving > 0) return;
  ++hop.resolving;
  NextHop* h = &hop;
  auto answer = resolver_->resolve_mx(hop.destination, [this, h](Resolver::MxAnswerPtr a) {
    --h->resolving;
    if (!stopping_) on_mx(*h, std::move(a));
  });
  if (answer) {
    --hop.resolving;
    on_mx(hop, std::move(answer));
  }
}

std::vector<SocketAddress> Delivery::mx_addresses(const NextHop& hop, bool* loop, std::vector<std::string>* names) {
  namespace dns = routing::dns;
  *loop = false;
  const dns::MxAnswer& a = *hop.answer;
  auto order = dns::shuffled_hosts(a, rng_);
  // Our own preference: the lowest of the MX records that name us or point at our addresses.
  int own = -1;
  for (const dns::MxHost* h : order) {
    bool self = std::find(shared_.self_names.begin(), shared_.self_names.end(), h->name) != shared_.self_names.end();
    for (const auto& addr : h->addresses)
      for (const auto& mine : shared_.self_addresses)
        if (addr.address.same_host(mine)) self = true;
    if (self && (own < 0 || h->preference < own)) own = h->preference;
  }
  if (own >= 0) {
    order.erase(std::remove_if(order.begin(), order.end(), [&](const dns::MxHost* h) { return h->preference >= own; }),
                order.end());
    if (order.empty()) {
      *loop = true;
      return {};
    }
  }
  std::vector<SocketAddress> out;
  names->clear();
  for (const auto& t : dns::attempt_addresses(order, resolver_->settings().address_cap, hop.connector->port)) {
    out.push_back(t.address);
    names->push_back(t.host->name);
  }
  return out;
}

void Delivery::on_mx(NextHop& hop, std::shared_ptr<const routing::dns::MxAnswer> answer) {
  namespace dns = routing::dns;
  auto now = loop_.now();
  hop.answer = std::move(answer);
  const dns::MxAnswer& a = *hop.answer;
  hop.answer_expires = now + std::chrono::seconds(std::max<uint32_t>(1, a.ttl));
  std::string what = fmt::format("{} {} {}", a.smtp_code, a.enhanced_status, a.text);
  switch (a.outcome) {
    case dns::DnsOutcome::kOk: {
      bool loop = false;
      std::vector<std::string> names;
      auto addrs = mx_addresses(hop, &loop, &names);
      if (loop) {
        // Postfix: "mail for X loops back to myself" — a configuration error; bounce (5.4.6).
        hop.hosts.clear();
        hop.no_hosts_reason = fmt::format("mail for {} loops back to myself (we are its best MX)", hop.destination);
        log::error("next hop {} / {}: {}", hop.connector->name, hop.destination, hop.no_hosts_reason);
        fail_all(hop, "5.4.6", "x-ringmail; " + hop.no_hosts_reason);
        return;
      }
      for (const auto& s : a.skipped) log::info("next hop {} / {}: MX {} skipped", hop.connector->name, hop.destination, s);
      hop.hosts = std::move(addrs);
      hop.host_names = std::move(names);
      hop.cursor = 0;
      hop.no_hosts_reason.clear();
      log::debug("next hop {} / {}: {} address(es) from DNS ({} MX host(s){})", hop.connector->name, hop.destination,
                 hop.hosts.size(), a.hosts.size(), a.implicit_mx ? ", implicit MX" : "");
      pump(hop);
      return;
    }
    case dns::DnsOutcome::kPermanent:
      hop.hosts.clear();
      hop.no_hosts_reason = what;
      log::info("next hop {} / {}: DNS says the domain takes no mail: {}", hop.connector->name, hop.destination, what);
      fail_all(hop, a.enhanced_status, "x-ringmail; " + what);
      return;
    case dns::DnsOutcome::kTemporary: {
      hop.hosts.clear();
      hop.no_hosts_reason = what;
      hop.last_error = "DNS: " + what;
      ++hop.down_rounds;
      auto delay = queue::retry_delay(hop.retry, hop.down_rounds, std::uniform_real_distribution<double>(0, 1)(rng_));
      hop.retry_at = now + delay;
      log::warn("next hop {} / {}: DNS lookup failed temporarily ({}); retry in {} s", hop.connector->name,
                hop.destination, what, duration_cast<seconds>(delay).count());
      defer_all(hop, {});
      return;
    }
  }
}

// A permanent answer for the whole destination (DNS): every recipient waiting for it fails, with a DSN.
void Delivery::fail_all(NextHop& hop, const std::string& status, const std::string& diagnostic) {
  auto fail = [&](const queue::MessageRef& msg, const std::vector<uint32_t>& rcpts, std::string_view body) {
    std::vector<DeliveryWork::Bounce> bounced;
    for (uint32_t r : rcpts) {
      log::info("{} <{}>: failed via {}: {}", queue::format_queue_id(msg->env.id), msg->env.rcpts[r],
                hop.connector->name, diagnostic);
      shared_.failed.fetch_add(1, std::memory_order_relaxed);
      finish(msg, r, queue::RcptState::kFailed);
      bounced.push_back({r, status, diagnostic});
    }
    send_dsn(*msg, false, bounced, {}, body);
  };
  while (!hop.ready.empty()) {
    DeliveryWork* w = hop.ready.front();
    hop.ready.pop_front();
    fail(w->msg, w->rcpts, w->body);
    delete w;
  }
  while (!hop.waiting.empty()) {
    QueuedWork qw = std::move(hop.waiting.front());
    hop.waiting.pop_front();
    fail(qw.msg, qw.rcpts.to_vector(), {});
  }
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
      collect_smart_hosts(*h, *results);
      if (h->hosts.empty()) {
        // Nothing to connect to: try the names again after the back-off; the mail waits.
        h->retry_at = loop_.now() + queue::retry_delay(h->retry, 1, 0.5);
        return;
      }
      h->no_hosts_reason.clear();
      pump(*h);
    });
  }
  if (hop.resolving == 0) collect_smart_hosts(hop, *results);
}

// The smart hosts' addresses in the connector's order, each with the name it came from (empty for
// IP literals): the name a `verify` session checks.
void Delivery::collect_smart_hosts(NextHop& hop, const std::vector<std::vector<SocketAddress>>& results) {
  hop.hosts.clear();
  hop.host_names.clear();
  const auto& shs = hop.connector->smart_hosts;
  for (size_t i = 0; i < results.size() && i < shs.size(); ++i)
    for (const auto& a : results[i]) {
      hop.hosts.push_back(a);
      hop.host_names.push_back(shs[i].is_ip_literal ? std::string() : shs[i].host);
    }
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
  std::push_heap(deferred_.begin(), deferred_.end(), later);
}

void Delivery::park(NextHop& hop, DeliveryWork* w) {
  hop.parked.push_back({std::move(w->msg), IndexList(w->rcpts)});
  delete w;
}

bool Delivery::hop_open(const NextHop& hop) const {
  return !stopping_ && !hop.suspended && !hop.hosts.empty() && loop_.now() >= hop.retry_at;
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
  unsigned limit = hop.probing ? 1u : static_cast<unsigned>(hop.connector->max_connections_per_destination);
  if (hop.answer && wanted > 0 && hop.resolving == 0 && loop_.now() >= hop.answer_expires) {
    resolve_mx(hop);  // the TTL ran out: the cache answers at once or the lookup runs meanwhile
    if (!hop_open(hop)) return;
  }
  while (wanted > 0 && hop.sessions < limit &&
         shared_.outbound.load(std::memory_order_relaxed) < shared_.max_outbound) {
    shared_.outbound.fetch_add(1, std::memory_order_relaxed);
    ++hop.sessions;
    ++hop.opening;
    if (hop.answer && hop.consecutive_failures == 0) {
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
  auto drop_space = [](std::string s) { return s.empty() ? s : s.substr(1); };
  queue::dsn::MailParams mp;
  mp.ret = static_cast<queue::dsn::Ret>(env.dsn_ret);
  mp.envid = env.envid;
  mp.has_envid = !env.envid.empty();
  w.txn.dsn_mail_params = drop_space(queue::dsn::format_mail_params(mp));
  w.txn.recipients.clear();
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
                                   const std::string& host) {
  NextHop& hop = *work.hop;
  uint32_t rcpt = work.rcpts[txn_index];
  bool more_hosts = hop.consecutive_failures + 1 < hop.hosts.size();
  const auto& env = work.msg->env;
  switch (smtp::disposition(outcome, more_hosts)) {
    case smtp::Disposition::kDelivered:
      mark_up(hop);
      shared_.delivered.fetch_add(1, std::memory_order_relaxed);
      log::debug("{} <{}>: delivered via {} ({}): {}", queue::format_queue_id(env.id), env.rcpts[rcpt],
                 hop.connector->name, host, smtp::describe(outcome));
      finish(work.msg, rcpt, queue::RcptState::kDelivered);
      break;
    case smtp::Disposition::kFailed:
      shared_.failed.fetch_add(1, std::memory_order_relaxed);
      log::info("{} <{}>: failed via {} ({}): {}", queue::format_queue_id(env.id), env.rcpts[rcpt],
                hop.connector->name, host, smtp::describe(outcome));
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
    send_dsn(*work.msg, false, work.bounced, work.remote, work.body);
    work.bounced.clear();
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
    send_dsn(*msg, false, expired, remote, body);
  }
  if (!delayed.empty()) send_dsn(*msg, true, delayed, remote, body, &hop.retry);
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
  hop.consecutive_failures = 0;
  if (hop.probing) log::info("next hop {} / {}: reachable again", hop.connector->name, hop.destination);
  hop.probing = false;
  hop.down_rounds = 0;
}

void Delivery::on_session_result(NextHop& hop, const smtp::DeliveryOutcome& outcome, const std::string& host) {
  if (outcome.kind == smtp::OutcomeKind::kTryNextHost) {
    hop.last_error = fmt::format("{}: {}", host, smtp::describe(outcome));
    log::info("next hop {} / {}: {}; trying the next host", hop.connector->name, hop.destination, hop.last_error);
    if (loop_.now() < hop.retry_at) {
      // Already marked down by another session of the same cohort: its work waits with the rest.
      defer_all(hop, host);
      return;
    }
    ++hop.consecutive_failures;
    ++hop.cursor;
    if (hop.consecutive_failures >= hop.hosts.size()) {
      // Every host failed in a row: the destination is down (Postfix's dead destination). What
      // waits is deferred instead of hammering it; at the retry time one probe session goes out,
      // and only when it works do the others follow. Each round down backs off further.
      ++hop.down_rounds;
      auto delay = queue::retry_delay(hop.retry, hop.down_rounds, std::uniform_real_distribution<double>(0, 1)(rng_));
      hop.retry_at = loop_.now() + delay;
      hop.probing = true;
      log::warn("next hop {} / {}: all {} hosts failed; marked down, probe in {} s", hop.connector->name,
                hop.destination, hop.hosts.size(), duration_cast<seconds>(delay).count());
      defer_all(hop, host);
      hop.consecutive_failures = 0;
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
    std::pop_heap(deferred_.begin(), deferred_.end(), later);
    DeferredWork d = std::move(deferred_.back());
    deferred_.pop_back();
    d.hop->waiting.push_back(std::move(d.work));
  }
  if (!stopping_) {
    serve_starved();
    for (auto& [key, hop] : hops_) {
      if (hop->hosts.empty() && hop->resolving == 0 && now >= hop->retry_at && !hop->waiting.empty()) {
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

// ---- DSNs ----------------------------------------------------------------------------------

void Delivery::send_dsn(const queue::QueuedMessage& msg, bool delay, const std::vector<DeliveryWork::Bounce>& rcpts,
                        const std::string& remote, std::string_view original, const queue::RetryPolicy* policy) {
  namespace dsn = queue::dsn;
  const auto& env = msg.env;
  auto kind = delay ? dsn::ReportKind::kDelay : dsn::ReportKind::kFailure;
  std::string qid = queue::format_queue_id(env.id);
  if (env.mail_from.empty()) {
    // A bounce (or any null-sender message) never produces a DSN: that is how loops are avoided.
    log::info("{}: no {} DSN: the message has the null sender", qid, delay ? "delay" : "failure");
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
    rr.action = delay ? dsn::Action::kDelayed : dsn::Action::kFailed;
    rr.status = delay && b.status[0] != '4' ? "4.0.0" : b.status;
    rr.remote_mta = remote;
    rr.diagnostic = b.diagnostic;
    rr.last_attempt = wall_now;
    if (delay) rr.will_retry_until = queue::expires_at(policy ? *policy : shared_.retry, env.arrival);
    report.recipients.push_back(std::move(rr));
  }
  if (report.recipients.empty()) {
    log::info("{}: no {} DSN: NOTIFY asked for none", qid, delay ? "delay" : "failure");
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
    log::warn("{}: {} DSN for <{}> dropped: no spool writer for DSNs", qid, delay ? "delay" : "failure",
              env.mail_from);
    return;
  }
  queue::StoredEnvelope out;
  out.arrival = wall_now;
  out.mail_from.clear();  // null reverse-path (RFC 5321 §4.5.5)
  out.rcpts.push_back(composed->rcpt_to);
  out.flags = (composed->eight_bit ? queue::kEnvelope8BitMime : 0u) | (composed->smtputf8 ? queue::kEnvelopeSmtpUtf8 : 0u);
  out.client = fmt::format("DSN for {}", qid);
  log::info("{}: {} DSN for {} recipient(s) queued to <{}>", qid, delay ? "delay" : "failure",
            report.recipients.size(), env.mail_from);
  shared_.dsns.fetch_add(1, std::memory_order_relaxed);
  local_->submit(std::move(out), std::move(composed->message));
}

// ---- Admin operations ----------------------------------------------------------------------

template <typename Fn>
void Delivery::for_each_work(const NextHop& hop, Fn fn) const {
  for (const auto& q : hop.waiting) fn(q.msg, q.rcpts);
  for (const auto* w : hop.ready) fn(w->msg, w->rcpts);
  for (const auto& q : hop.parked) fn(q.msg, q.rcpts);
  for (const auto& d : deferred_)
    if (d.hop == &hop) fn(d.work.msg, d.work.rcpts);
}

NextHop* Delivery::hop_by_id(const std::string& queue_id) const {
  for (const auto& [key, hop] : hops_)
    if (queue_id_of(*hop) == queue_id) return hop.get();
  return nullptr;
}

// Counts without touching the messages (a million queued recipients must list in well under
// 100 ms): work items and their recipient counts; deferred items in one pass over the heap.
// "messages" counts work items, which is the number of messages except when one message's
// recipients for one destination were split (recipient cap, partial deferral).
std::vector<QueueView> Delivery::queue_views() const {
  struct Count {
    size_t items = 0, rcpts = 0;
  };
  std::unordered_map<const NextHop*, Count> deferred;
  for (const auto& d : deferred_) {
    auto& c = deferred[d.hop];
    ++c.items;
    c.rcpts += d.work.rcpts.size();
  }
  std::vector<QueueView> out;
  out.reserve(hops_.size());
  auto now = loop_.now();
  auto wall_now = std::chrono::system_clock::now();
  for (const auto& [key, hop] : hops_) {
    QueueView v;
    v.id = queue_id_of(*hop);
    v.connector = hop->connector->name;
    v.destination = hop->destination;
    if (hop->suspended) v.state = "Suspended";
    else if (now < hop->retry_at) v.state = "Retry";
    else if (hop->sessions > 0) v.state = "Active";
    else v.state = "Ready";
    Count c;
    if (auto it = deferred.find(hop.get()); it != deferred.end()) c = it->second;
    for (const auto* q : {&hop->waiting, &hop->parked}) {
      c.items += q->size();
      for (const auto& w : *q) c.rcpts += w.rcpts.size();
    }
    c.items += hop->ready.size();
    for (const auto* w : hop->ready) c.rcpts += w->rcpts.size();
    v.messages = c.items;
    v.recipients = c.rcpts;
    if (c.items > 0) v.oldest = hop->oldest;
    else hop->oldest = WallTime::max();  // empty: start over
    v.last_error = hop->last_error.empty() ? hop->no_hosts_reason : hop->last_error;
    if (now < hop->retry_at) v.next_retry = wall_now + duration_cast<milliseconds>(hop->retry_at - now);
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<queue::MessageRef> Delivery::messages_in(const std::string& queue_id) const {
  std::vector<queue::MessageRef> out;
  NextHop* hop = hop_by_id(queue_id);
  if (!hop) return out;
  for_each_work(*hop, [&](const queue::MessageRef& msg, const auto&) {
    if (std::none_of(out.begin(), out.end(), [&](const auto& m) { return m.get() == msg.get(); })) out.push_back(msg);
  });
  return out;
}

void Delivery::find_message(queue::QueueId id, MessageView* into) const {
  for (const auto& [key, hop] : hops_) {
    bool here = false;
    for_each_work(*hop, [&](const queue::MessageRef& msg, const auto&) {
      if (msg->env.id != id) return;
      here = true;
      if (!into->msg) into->msg = msg;
    });
    if (here) into->queues.push_back(queue_id_of(*hop));
  }
  if (into->msg) into->suspended = into->msg->suspended.load(std::memory_order_relaxed);
}

bool Delivery::suspend_queue(const std::string& queue_id, bool suspend) {
  NextHop* hop = hop_by_id(queue_id);
  if (!hop) return false;
  hop->suspended = suspend;
  log::info("queue {} {} by the administrator", queue_id, suspend ? "suspended" : "resumed");
  if (!suspend) pump(*hop);
  return true;
}

// Moves the deferred entries matching `pred` to their queues' waiting lists; returns how many.
template <typename Pred>
static size_t release_deferred(std::vector<DeferredWork>& heap, Pred pred, std::vector<NextHop*>* touched) {
  size_t n = 0;
  for (auto it = heap.begin(); it != heap.end();) {
    if (pred(*it)) {
      it->hop->waiting.push_back(std::move(it->work));
      touched->push_back(it->hop);
      it = heap.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  if (n > 0) std::make_heap(heap.begin(), heap.end(), later);
  return n;
}

bool Delivery::retry_queue(const std::string& queue_id) {
  NextHop* hop = hop_by_id(queue_id);
  if (!hop) return false;
  hop->retry_at = {};
  std::vector<NextHop*> touched;
  size_t n = release_deferred(deferred_, [&](const DeferredWork& d) { return d.hop == hop; }, &touched);
  log::info("queue {}: retry now (administrator; {} deferred item(s))", queue_id, n);
  pump(*hop);
  return true;
}

size_t Delivery::suspend_message(queue::QueueId id, bool suspend) {
  size_t n = 0;
  for (auto& [key, hop] : hops_) {
    std::deque<QueuedWork> keep;
    if (suspend) {
      for (auto& q : hop->waiting) {
        if (q.msg->env.id == id) {
          q.msg->suspended.store(true, std::memory_order_relaxed);
          hop->parked.push_back(std::move(q));
          ++n;
        } else {
          keep.push_back(std::move(q));
        }
      }
      hop->waiting.swap(keep);
      for (auto it = hop->ready.begin(); it != hop->ready.end();) {
        if ((*it)->msg->env.id == id) {
          (*it)->msg->suspended.store(true, std::memory_order_relaxed);
          park(*hop, *it);
          it = hop->ready.erase(it);
          ++n;
        } else {
          ++it;
        }
      }
    } else {
      for (auto& q : hop->parked) {
        if (q.msg->env.id == id) {
          q.msg->suspended.store(false, std::memory_order_relaxed);
          hop->waiting.push_back(std::move(q));
          ++n;
        } else {
          keep.push_back(std::move(q));
        }
      }
      hop->parked.swap(keep);
      pump(*hop);
    }
  }
  for (auto& d : deferred_)  // waits for its retry time; parked when it comes due if still suspended
    if (d.work.msg->env.id == id) {
      d.work.msg->suspended.store(suspend, std::memory_order_relaxed);
      ++n;
    }
  return n;
}

size_t Delivery::retry_message(queue::QueueId id) {
  std::vector<NextHop*> touched;
  size_t n = release_deferred(deferred_, [&](const DeferredWork& d) { return d.work.msg->env.id == id; }, &touched);
  for (NextHop* hop : touched) pump(*hop);
  return n;
}

routing::dns::CacheStats Delivery::dns_stats() const {
  return resolver_ ? resolver_->mx().answer_stats() : routing::dns::CacheStats{};
}

void Delivery::recipient_views(queue::QueueId id, std::vector<RecipientView>* out) const {
  for (const auto& [key, hop] : hops_) {
    for_each_work(*hop, [&](const queue::MessageRef& msg, const auto& rcpts) {
      if (msg->env.id != id) return;
      for (uint32_t r : rcpts) {
        const auto& rs = msg->rcpts[r];
        out->push_back({r, queue_id_of(*hop), rs.state, rs.attempts, rs.next_attempt, hop->last_error,
                        hop->suspended || msg->suspended.load(std::memory_order_relaxed)});
      }
    });
  }
}

void Delivery::fail_recipients(const queue::MessageRef& msg, const std::vector<uint32_t>& rcpts, bool with_dsn) {
  msg->removed.store(true, std::memory_order_release);
  std::vector<DeliveryWork::Bounce> bounced;
  for (uint32_t r : rcpts) {
    finish(msg, r, queue::RcptState::kFailed);
    bounced.push_back({r, "5.0.0", "x-ringmail; removed from the queue by the administrator"});
  }
  log::info("{}: {} recipient(s) removed from the Unreachable queue by the administrator{}",
            queue::format_queue_id(msg->env.id), rcpts.size(), with_dsn ? " (with DSN)" : "");
  if (with_dsn) send_dsn(*msg, false, bounced, {}, {});
}

size_t Delivery::remove_message(queue::QueueId id, bool with_dsn) {
  struct Found {
    NextHop* hop;
    QueuedWork work;
    std::string body;  // when it was loaded
  };
  std::vector<Found> found;
  for (auto& [key, hop] : hops_) {
    for (auto* q : {&hop->waiting, &hop->parked}) {
      std::deque<QueuedWork> keep;
      for (auto& w : *q) {
        if (w.msg->env.id == id) found.push_back({hop.get(), std::move(w), {}});
        else keep.push_back(std::move(w));
      }
      q->swap(keep);
    }
    for (auto it = hop->ready.begin(); it != hop->ready.end();) {
      if ((*it)->msg->env.id == id) {
        found.push_back({hop.get(), {std::move((*it)->msg), IndexList((*it)->rcpts)}, std::move((*it)->body)});
        delete *it;
        it = hop->ready.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto it = deferred_.begin(); it != deferred_.end();) {
    if (it->work.msg->env.id == id) {
      found.push_back({it->hop, std::move(it->work), {}});
      it = deferred_.erase(it);
    } else {
      ++it;
    }
  }
  if (!found.empty()) std::make_heap(deferred_.begin(), deferred_.end(), later);
  size_t n = 0;
  for (auto& f : found) {
    f.work.msg->removed.store(true, std::memory_order_release);  // work in flight is dropped when it returns
    std::vector<DeliveryWork::Bounce> bounced;
    for (uint32_t r : f.work.rcpts) {
      finish(f.work.msg, r, queue::RcptState::kFailed);
      bounced.push_back({r, "5.0.0", "x-ringmail; removed from the queue by the administrator"});
      ++n;
    }
    log::info("{}: {} recipient(s) removed from queue {} by the administrator{}", queue::format_queue_id(id),
              f.work.rcpts.size(), queue_id_of(*f.hop), with_dsn ? " (with DSN)" : "");
    if (with_dsn) send_dsn(*f.work.msg, false, bounced, {}, f.body);
  }
  return n;
}

}  // namespace ringmail::engine
