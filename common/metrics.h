// A small Prometheus registry: counters, gauges and fixed-bucket histograms, rendered in the text
// exposition format 0.0.4. Series are registered at start-up (names and label values checked,
// at most kMaxSeriesPerFamily per metric so cardinality stays bounded: no label per domain);
// updates are relaxed atomics on cache-line-aligned cells, cheap and safe from any thread.
// What ringmail measures is listed in RelayMetrics at the end; HTTP serving lives in engine/admin.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringmail::metrics {

inline constexpr size_t kMaxSeriesPerFamily = 64;  // registration beyond this is refused
inline constexpr size_t kMaxBuckets = 32;          // histogram buckets, +Inf excluded

using Labels = std::vector<std::pair<std::string, std::string>>;  // name → value, in order

// A monotonically increasing count.
class alignas(64) Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};  // total since start
};

// A value that goes up and down (queue sizes, open sessions, bytes).
class alignas(64) Gauge {
 public:
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  void sub(int64_t d) { value_.fetch_sub(d, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};  // current value
};

// Observations counted into fixed buckets (upper bounds, ascending), plus their sum.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);

  struct Snapshot {
    std::vector<double> upper_bounds;  // as registered
    std::vector<uint64_t> cumulative;  // per bound, then +Inf last (size = bounds + 1)
    double sum = 0;                    // of all observations
  };
  Snapshot snapshot() const;  // bucket reads are not atomic together; the render tolerates it

 private:
  struct alignas(64) Cell {
    std::atomic<uint64_t> count{0};  // observations in this bucket only (not cumulative)
  };
  std::vector<double> bounds_;                    // ascending upper bounds
  std::unique_ptr<Cell[]> cells_;                 // bounds_.size() + 1 (last: above every bound)
  alignas(64) std::atomic<double> sum_{0.0};      // sum of observations
};

// Bucket bounds helpers: start, start*factor, ... (count bounds).
std::vector<double> exponential_buckets(double start, double factor, size_t count);

// Owns every series. Registration takes a lock and may throw std::invalid_argument (bad name or
// label, a name reused with another type or help or bucket layout, too many series): it happens
// at start-up and the caller turns the exception into a start-up error. Registering the same name
// and labels twice returns the same series. References stay valid for the registry's lifetime.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, std::vector<double> upper_bounds,
                       const Labels& labels = {});

  // Appends the text exposition (format 0.0.4) of every family, in registration order.
  void render(std::string& out) const;
  std::string render() const;

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  struct Family;
  Family& family(std::string_view name, std::string_view help, int type);
  mutable std::mutex mutex_;                       // guards families_ (registration and render)
  std::vector<std::unique_ptr<Family>> families_;  // in registration order
};

// True for [a-zA-Z_:][a-zA-Z0-9_:]* (metric) and [a-zA-Z_][a-zA-Z0-9_]* not starting "__" (label).
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

// The state label values of RelayMetrics::queue_* in index order (admin::QueueState order).
inline constexpr size_t kQueueStates = 5;
inline constexpr const char* kQueueStateLabels[kQueueStates] = {"active", "ready", "retry", "suspended", "unreachable"};

// The metrics ringmail exports (names in docs/admin.md). Queue-size and session gauges are set by
// their owners; label values are fixed here so cardinality is known at start-up.
struct RelayMetrics {
  explicit RelayMetrics(Registry& r);

  Counter& received;    // ringmail_messages_received_total: accepted with 250
  Counter& delivered;   // ringmail_recipients_total{outcome="delivered"}
  Counter& deferred;    // ringmail_recipients_total{outcome="deferred"}
  Counter& bounced;     // ringmail_recipients_total{outcome="bounced"}
  Counter& expired;     // ringmail_recipients_total{outcome="expired"}
  Counter& dsn_sent;    // ringmail_dsn_generated_total: reports queued
  Gauge* queue_recipients[kQueueStates];  // ringmail_queue_recipients{state=active|ready|retry|suspended|unreachable}
  Gauge* queue_count[kQueueStates]; // ringmail_queues{state=...}: number of next-hop queues per state
  Gauge& sessions_inbound;     // ringmail_sessions_open{direction="inbound"}
  Gauge& sessions_outbound;    // ringmail_sessions_open{direction="outbound"}
  Counter& dns_cache_hits;     // ringmail_dns_cache_lookups_total{result="hit"}
  Counter& dns_cache_misses;   // ringmail_dns_cache_lookups_total{result="miss"}
  Gauge& spool_bytes;          // ringmail_spool_bytes: bytes in live spool segments
  Histogram& spool_sync_seconds;  // ringmail_spool_sync_seconds: one group-commit fdatasync
  Counter& tls_handshakes_in;   // ringmail_tls_handshakes_total{direction="inbound"}: STARTTLS completed
  Counter& tls_handshakes_out;  // ringmail_tls_handshakes_total{direction="outbound"}
  Counter& tls_resumed_in;      // ringmail_tls_resumed_total{direction="inbound"}: of those, resumed
  Counter& tls_resumed_out;     // ringmail_tls_resumed_total{direction="outbound"}
  Counter& tls_failures_in;     // ringmail_tls_failures_total{direction="inbound"}: failed or timed out
  Counter& auth_ok;             // ringmail_auth_attempts_total{result="ok"}: inbound AUTH accepted
  Counter& auth_failed;         // ringmail_auth_attempts_total{result="failed"}: answered 535
};

}  // namespace ringmail::metrics
