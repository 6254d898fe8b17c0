// MX resolution and its caches (see mx_resolver.h). The flow of one domain:
//   MX query (coalesced in records_) ─┬─ NXDOMAIN → 550 5.1.2      ─ temporary → 451 4.4.3
//                                     ├─ only "MX 0 ." → 556 5.1.10 (RFC 7505, no fallback)
//                                     ├─ MX hosts (null MX among others ignored), by preference
//                                     └─ NODATA → implicit MX: the (CNAME-resolved) domain itself
//   then A and AAAA of every host (coalesced, cached per host) → hosts with addresses, or
//   451 4.4.3 if a lookup failed, 550 5.4.4 if every lookup said "does not exist".
#include "routing/dns/mx_resolver.h"

#include <fmt/format.h>

#include <algorithm>

namespace ringmail::routing::dns {
namespace {

constexpr int kMaxCnameHops = 8;  // follow-up queries for CNAMEs the server did not resolve

bool needs_canonical(std::string_view name) {
  if (!name.empty() && name.back() == '.') return true;
  return std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

EntryKind kind_of(const DnsRecords& r) {
  switch (r.status) {
    case LookupStatus::kFound: return EntryKind::kPositive;
    case LookupStatus::kNoData:
    case LookupStatus::kNxDomain: return EntryKind::kNegative;
    default: return EntryKind::kFailure;
  }
}

// Negative answers without an SOA are not cached (RFC 2308 §5): lifetime from a zero TTL.
uint32_t cache_ttl_of(const DnsRecords& r) {
  if (r.status == LookupStatus::kNoData || r.status == LookupStatus::kNxDomain) return r.has_soa ? r.ttl : 0;
  return r.ttl;
}

bool definitely_absent(const DnsRecords& r) {
  return r.status == LookupStatus::kNoData || r.status == LookupStatus::kNxDomain;
}

std::vector<HostAddress> order_addresses(const DnsRecords& v4, const DnsRecords& v6, IpPreference pref) {
  std::vector<HostAddress> out;
  auto add_all = [&](const DnsRecords& r) {
    if (r.status != LookupStatus::kFound) return;
    for (const SocketAddress& a : r.addresses) out.push_back({a, r.ttl});
  };
  if (pref == IpPreference::kIpv4) {
    add_all(v4);
    add_all(v6);
  } else if (pref == IpPreference::kIpv6) {
    add_all(v6);
    add_all(v4);
  } else {  // interleaved, IPv6 first (RFC 8305 §4)
    size_t n4 = v4.status == LookupStatus::kFound ? v4.addresses.size() : 0;
    size_t n6 = v6.status == LookupStatus::kFound ? v6.addresses.size() : 0;
    for (size_t i = 0; i < std::max(n4, n6); ++i) {
      if (i < n6) out.push_back({v6.addresses[i], v6.ttl});
      if (i < n4) out.push_back({v4.addresses[i], v4.ttl});
    }
  }
  return out;
}

MxResolver::AnswerPtr timeout_answer(const std::string& domain, std::chrono::milliseconds limit) {
  auto a = std::make_shared<MxAnswer>();
  a->outcome = DnsOutcome::kTemporary;
  a->smtp_code = 451;
  a->enhanced_status = "4.4.3";
  a->domain = domain;
  a->canonical_domain = domain;
  a->text = fmt::format("DNS lookup for {} did not finish within {} ms", domain, limit.count());
  return a;
}

}  // namespace

struct MxResolver::Job {
  struct Host {
    std::string name;       // exchange
    uint16_t preference;    // MX preference (0 for the implicit MX)
    uint32_t mx_ttl;        // MX RRset TTL (unused for the implicit MX)
    RecordsPtr v4, v6;      // A and AAAA answers, filled as they arrive
  };
  std::string domain;       // answer cache key
  RecordsPtr mx;            // the MX answer
  bool implicit = false;    // hosts is the domain itself
  std::vector<Host> hosts;  // by preference
  size_t pending = 0;       // A/AAAA answers still to come
};

MxResolver::MxResolver(DnsTransport& transport, DnsIoDriver& io, const Clock& clock, const DnsSettings& settings)
    : transport_(transport),
      io_(io),
      clock_(clock),
      settings_(settings),
      records_(clock, settings.cache.capacity),
      answers_(clock, settings.cache.capacity) {}

MxResolver::~MxResolver() {
  closing_ = true;
  answers_.drop_waiters();
  records_.drop_waiters();
  transport_.cancel_all();  // their callbacks see closing_ and return
  io_.clear_timer();
}

MxResolver::AnswerPtr MxResolver::resolve(std::string_view domain, Done done) {
  return resolve(domain, clock_.now() + settings_.lookup_deadline, std::move(done));
}

MxResolver::AnswerPtr MxResolver::resolve(std::string_view domain, MonoTime deadline, Done done) {
  std::string lowered;
  if (needs_canonical(domain)) {
    lowered = canonical_name(domain);
    domain = lowered;
  }
  if (const AnswerPtr* hit = answers_.find(domain)) return *hit;

  ++inside_resolve_;
  std::string key(domain);
  auto waiter = [done = std::move(done), key, limit = settings_.lookup_deadline](const AnswerPtr& a) {
    done(a ? a : timeout_answer(key, limit));
  };
  if (answers_.wait(key, deadline, std::move(waiter))) {
    auto job = std::make_shared<Job>();
    job->domain = key;
    fetch_records(job->domain, kTypeMx, [this, job](const RecordsPtr& r) { on_mx(job, r); });
  }
  --inside_resolve_;
  rearm_timer();
  return nullptr;
}

void MxResolver::fetch_records(const std::string& name, uint16_t type, RecordsDone done) {
  std::string key = fmt::format("{}/{}", type, name);
  if (const RecordsPtr* hit = records_.find(key)) {
    done(*hit);
    return;
  }
  if (records_.wait(key, MonoTime::max(), [done = std::move(done)](const RecordsPtr& r) {
        if (r) done(r);
      }))
    query_records(key, name, type, 0, UINT32_MAX);
}

void MxResolver::query_records(const std::string& key, const std::string& name, uint16_t type, int hops,
                               uint32_t ttl_so_far) {
  transport_.query(name, type, [this, key, type, hops, ttl_so_far](DnsRecords r) {
    if (closing_) return;
    if (r.status == LookupStatus::kCnameDangling) {
      if (hops < kMaxCnameHops) {
        query_records(key, r.final_name, type, hops + 1, std::min(ttl_so_far, r.ttl));
        return;
      }
      r.status = LookupStatus::kTemporary;
      r.error = "CNAME chain too long";
    }
    if (r.status == LookupStatus::kFound) r.ttl = std::min(r.ttl, ttl_so_far);
    EntryKind kind = kind_of(r);
    auto lifetime = cache_lifetime(settings_.cache, kind, cache_ttl_of(r), records_.failure_streak(key));
    // A lost packet is not a server's statement: caching it per record would fail every domain
    // that shares this MX host for the back-off time. The domain's own answer is still cached
    // briefly (answers_), which is what keeps queued mail from hammering the server.
    if (!r.from_server) lifetime = std::chrono::seconds(0);
    records_.complete(key, std::make_shared<const DnsRecords>(std::move(r)), lifetime, kind);
    rearm_timer();
  });
}

void MxResolver::on_mx(const std::shared_ptr<Job>& job, const RecordsPtr& mx) {
  job->mx = mx;
  MxAnswer a;
  a.domain = job->domain;
  a.canonical_domain = mx->final_name.empty() ? job->domain : mx->final_name;
  switch (mx->status) {
    case LookupStatus::kTemporary:
    case LookupStatus::kCnameDangling:
      a.outcome = DnsOutcome::kTemporary;
      a.smtp_code = 451;
      a.enhanced_status = "4.4.3";
      a.text = fmt::format("MX lookup for {} failed: {}", job->domain, mx->error);
      finish(job, std::move(a), EntryKind::kFailure, 0);
      return;
    case LookupStatus::kNxDomain:
      a.outcome = DnsOutcome::kPermanent;
      a.smtp_code = 550;
      a.enhanced_status = "5.1.2";
      a.text = fmt::format("domain {} does not exist (NXDOMAIN)", a.canonical_domain);
      finish(job, std::move(a), EntryKind::kNegative, cache_ttl_of(*mx));
      return;
    case LookupStatus::kNoData:
      job->implicit = true;
      job->hosts.push_back({a.canonical_domain, 0, 0, nullptr, nullptr});
      break;
    case LookupStatus::kFound:
      for (const MxRecord& r : mx->mx)
        if (!r.host.empty()) job->hosts.push_back({r.host, r.preference, mx->ttl, nullptr, nullptr});
      if (job->hosts.empty()) {  // only "MX 0 ."
        a.outcome = DnsOutcome::kPermanent;
        a.smtp_code = 556;
        a.enhanced_status = "5.1.10";
        a.text = fmt::format("recipient domain {} has a null MX: it accepts no mail (RFC 7505)", job->domain);
        finish(job, std::move(a), EntryKind::kNegative, mx->ttl);
        return;
      }
      std::stable_sort(job->hosts.begin(), job->hosts.end(),
                       [](const Job::Host& x, const Job::Host& y) { return x.preference < y.preference; });
      break;
  }
  job->pending = job->hosts.size() * 2;
  for (size_t i = 0; i < job->hosts.size(); ++i) {
    for (uint16_t type : {kTypeA, kTypeAaaa}) {
      fetch_records(job->hosts[i].name, type, [this, job, i, type](const RecordsPtr& r) {
        (type == kTypeA ? job->hosts[i].v4 : job->hosts[i].v6) = r;
        if (--job->pending == 0) on_host_records(job);
      });
    }
  }
}

void MxResolver::on_host_records(const std::shared_ptr<Job>& job) {
  MxAnswer a;
  a.domain = job->domain;
  a.canonical_domain = job->mx->final_name.empty() ? job->domain : job->mx->final_name;
  a.implicit_mx = job->implicit;
  uint32_t ttl = job->implicit ? UINT32_MAX : job->mx->ttl;
  uint32_t negative_ttl = UINT32_MAX;  // for the "no address anywhere" answer
  bool any_temporary = false;
  for (const Job::Host& h : job->hosts) {
    MxHost host;
    host.name = h.name;
    host.preference = h.preference;
    host.addresses = order_addresses(*h.v4, *h.v6, settings_.ip_preference);
    if (host.addresses.empty()) {
      bool temporary = !definitely_absent(*h.v4) || !definitely_absent(*h.v6);
      any_temporary = any_temporary || temporary;
      negative_ttl = std::min({negative_ttl, cache_ttl_of(*h.v4), cache_ttl_of(*h.v6)});
      std::string why = temporary ? (h.v4->status == LookupStatus::kTemporary ? h.v4->error : h.v6->error)
                                  : std::string(status_name(h.v4->status));
      a.skipped.push_back(fmt::format("{}: {}", h.name, why));
      continue;
    }
    uint32_t address_ttl = UINT32_MAX;
    for (const HostAddress& x : host.addresses) address_ttl = std::min(address_ttl, x.ttl);
    host.ttl = job->implicit ? address_ttl : h.mx_ttl;
    ttl = std::min(ttl, address_ttl);
    a.hosts.push_back(std::move(host));
  }
  if (!a.hosts.empty()) {
    a.outcome = DnsOutcome::kOk;
    a.smtp_code = 250;
    a.enhanced_status = "2.0.0";
    a.text = fmt::format("{} {} host(s) with addresses", a.hosts.size(), job->implicit ? "implicit MX" : "MX");
    finish(job, std::move(a), EntryKind::kPositive, ttl);
    return;
  }
  std::string what = job->implicit ? fmt::format("{} has no MX and no address records", a.canonical_domain)
                                   : fmt::format("no MX host of {} has an address", a.domain);
  if (any_temporary) {
    a.outcome = DnsOutcome::kTemporary;
    a.smtp_code = 451;
    a.enhanced_status = "4.4.3";
    a.text = fmt::format("{} (lookups failed: {})", what, fmt::join(a.skipped, "; "));
    finish(job, std::move(a), EntryKind::kFailure, 0);
  } else {
    a.outcome = DnsOutcome::kPermanent;
    a.smtp_code = 550;
    a.enhanced_status = "5.4.4";
    a.text = std::move(what);
    finish(job, std::move(a), EntryKind::kNegative, negative_ttl == UINT32_MAX ? 0 : negative_ttl);
  }
}

void MxResolver::finish(const std::shared_ptr<Job>& job, MxAnswer answer, EntryKind kind, uint32_t dns_ttl) {
  auto lifetime = cache_lifetime(settings_.cache, kind, dns_ttl, answers_.failure_streak(job->domain));
  answer.ttl = static_cast<uint32_t>(lifetime.count());
  publish(job->domain, std::make_shared<const MxAnswer>(std::move(answer)), lifetime, kind);
}

void MxResolver::publish(const std::string& domain, AnswerPtr answer, std::chrono::seconds lifetime, EntryKind kind) {
  if (inside_resolve_ > 0) {  // the caller of resolve() hears back later, from the loop
    deferred_.push_back({domain, std::move(answer), lifetime, kind});
    return;
  }
  answers_.complete(domain, std::move(answer), lifetime, kind);
}

void MxResolver::on_ready(int fd, bool readable, bool writable) {
  transport_.process(fd, readable, writable);
  rearm_timer();
}

void MxResolver::on_timer() {
  transport_.process(-1, false, false);
  std::vector<Deferred> ready;
  ready.swap(deferred_);
  for (Deferred& d : ready) answers_.complete(d.domain, std::move(d.answer), d.lifetime, d.kind);
  answers_.expire_waiters(clock_.now());
  rearm_timer();
}

void MxResolver::rearm_timer() {
  if (closing_) return;
  if (!deferred_.empty()) {
    io_.set_timer(std::chrono::nanoseconds::zero());
    return;
  }
  std::optional<std::chrono::nanoseconds> after = transport_.next_timeout();
  if (std::optional<MonoTime> d = answers_.next_deadline()) {
    auto left = std::max<std::chrono::nanoseconds>(*d - clock_.now(), std::chrono::nanoseconds::zero());
    after = after ? std::min(*after, left) : left;
  }
  if (after) {
    io_.set_timer(*after);
  } else {
    io_.clear_timer();
  }
}

}  // namespace ringmail::routing::dns
