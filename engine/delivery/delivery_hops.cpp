// Where a next hop sends: its retry policy, the smart hosts' addresses (names through c-ares on
// this ring) or, for DNS-routed connectors, the MX answer walked by RFC 5321 §5.1 with the loop
// guard; permanent DNS answers fail what waits, temporary ones defer it. Part of Delivery.
#include "engine/delivery/delivery.h"

#include <algorithm>

#include "common/log.h"

namespace ringmail::engine {

using namespace std::chrono;

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
      hop.health.lookup_failed(now, hop.retry, std::uniform_real_distribution<double>(0, 1)(rng_));
      auto delay = hop.health.retry_at() - now;
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
    send_dsn(*msg, queue::dsn::ReportKind::kFailure, bounced, {}, body);
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
        h->health.wait_until(loop_.now() + queue::retry_delay(h->retry, 1, 0.5));
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

}  // namespace ringmail::engine
