// MxResolver: recipient domain → MxAnswer, by RFC 5321 §5.1, RFC 7505 and RFC 2308, through two
// caches: records (name + type, one DNS query each, coalesced, CNAMEs followed) and assembled
// answers (domain → MxAnswer, living as long as its shortest part). A cache hit is one hash
// lookup and returns at once; a miss calls `done` later from the loop, never inside resolve().
// One per worker thread, driven by the loop through DnsIoDriver (on_ready / on_timer).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "routing/dns/dns_io.h"
#include "routing/dns/dns_settings.h"
#include "routing/dns/dns_transport.h"
#include "routing/dns/expiring_cache.h"
#include "routing/dns/mx_answer.h"

namespace ringmail::routing::dns {

class MxResolver {
 public:
  using AnswerPtr = std::shared_ptr<const MxAnswer>;
  using Done = std::function<void(AnswerPtr)>;  // never null: timeouts are temporary answers

  // `transport` and `io` must outlive the resolver.
  MxResolver(DnsTransport& transport, DnsIoDriver& io, const Clock& clock, const DnsSettings& settings);
  ~MxResolver();  // pending callers are dropped without being called
  MxResolver(const MxResolver&) = delete;
  MxResolver& operator=(const MxResolver&) = delete;

  // The cached answer for `domain` (non-null: `done` is not used), or null and `done` runs later
  // with the answer or, at `deadline`, a temporary "lookup timed out" answer.
  AnswerPtr resolve(std::string_view domain, Done done);
  AnswerPtr resolve(std::string_view domain, MonoTime deadline, Done done);

  // Loop entry points (see DnsIoDriver).
  void on_ready(int fd, bool readable, bool writable);
  void on_timer();
  // Re-arms the loop timer; call after using the transport's channel directly.
  void rearm_timer();

  const DnsSettings& settings() const { return settings_; }
  const CacheStats& answer_stats() const { return answers_.stats(); }
  const CacheStats& record_stats() const { return records_.stats(); }
  size_t answers_cached() const { return answers_.size(); }
  size_t records_cached() const { return records_.size(); }
  size_t waiting() const { return answers_.waiting(); }

 private:
  struct Job;
  using RecordsPtr = std::shared_ptr<const DnsRecords>;
  using RecordsDone = std::function<void(const RecordsPtr&)>;

  void fetch_records(const std::string& name, uint16_t type, RecordsDone done);
  void query_records(const std::string& key, const std::string& name, uint16_t type, int hops, uint32_t ttl_so_far);
  void on_mx(const std::shared_ptr<Job>& job, const RecordsPtr& mx);
  void on_host_records(const std::shared_ptr<Job>& job);
  void finish(const std::shared_ptr<Job>& job, MxAnswer answer, EntryKind kind, uint32_t dns_ttl);
  void publish(const std::string& domain, AnswerPtr answer, std::chrono::seconds lifetime, EntryKind kind);

  DnsTransport& transport_;                // c-ares (or a scripted transport in tests)
  DnsIoDriver& io_;                        // the loop: our one timer
  const Clock& clock_;                     // cache expiry and waiter deadlines
  DnsSettings settings_;                   // copied at construction
  ExpiringCache<DnsRecords> records_;      // "type/name" → one answer
  ExpiringCache<MxAnswer> answers_;        // domain → assembled answer
  int inside_resolve_ = 0;                 // >0 while resolve() runs: answers are deferred
  struct Deferred {
    std::string domain;                    // answer cache key
    AnswerPtr answer;                      // what to publish
    std::chrono::seconds lifetime;         // cache lifetime
    EntryKind kind;                        // cache kind
  };
  std::vector<Deferred> deferred_;         // answers that arrived inside resolve()
  bool closing_ = false;                   // destructor running: drop late completions
};

}  // namespace ringmail::routing::dns
