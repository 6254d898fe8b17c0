// Outcome counting and summaries for ringmail-inject (see run_stats.h).
#include "tools/inject/run_stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace ringmail::inject {
namespace {

std::string codes_text(const RunStats& stats, bool json) {
  std::string out;
  for (size_t code = 0; code < stats.codes.size(); ++code) {
    if (stats.codes[code] == 0) continue;
    if (!out.empty()) out.append(", ");
    if (json) fmt::format_to(std::back_inserter(out), "\"{:03}\": {}", code, stats.codes[code]);
    else fmt::format_to(std::back_inserter(out), "{:03}: {}", code, stats.codes[code]);
  }
  return out;
}

double rate(uint64_t n, double seconds) { return seconds > 0 ? double(n) / seconds : 0.0; }

// Values below 64 ns have a bucket each; above, 64 buckets per power of two.
size_t bucket_index(uint64_t v) {
  if (v < 64) return size_t(v);
  int e = 63 - __builtin_clzll(v);  // >= 6
  return size_t(e - 5) * 64 + size_t((v >> (e - 6)) & 63);
}

uint64_t bucket_midpoint(size_t index) {
  if (index < 64) return index;
  int e = int(index / 64) + 5;
  uint64_t low = (64 + uint64_t(index % 64)) << (e - 6);
  return low + ((uint64_t(1) << (e - 6)) >> 1);
}

}  // namespace

void RunStats::record(const MessageOutcome& outcome) {
  ++attempted;
  int code = outcome.code;
  if (code < 0 || code >= int(codes.size())) code = 0;
  ++codes[size_t(code)];
  if (code >= 200 && code < 300) ++accepted;
  else if (code >= 400 && code < 500) ++temp_failed;
  else if (code >= 500) ++rejected;
  else ++no_reply;
  if (outcome.latency_ns >= 0) latency.add(outcome.latency_ns);
}

void RunStats::merge(const RunStats& other) {
  attempted += other.attempted;
  accepted += other.accepted;
  temp_failed += other.temp_failed;
  rejected += other.rejected;
  no_reply += other.no_reply;
  connections += other.connections;
  connection_errors += other.connection_errors;
  slots_given_up += other.slots_given_up;
  tls_handshakes += other.tls_handshakes;
  tls_resumed += other.tls_resumed;
  tls_failures += other.tls_failures;
  if (!other.last_connection_error.empty()) last_connection_error = other.last_connection_error;
  for (size_t i = 0; i < codes.size(); ++i) codes[i] += other.codes[i];
  latency.merge(other.latency);
}

void LatencyHistogram::add(int64_t ns) {
  ++buckets_[bucket_index(uint64_t(std::max<int64_t>(ns, 0)))];
  ++count_;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
}

double LatencyHistogram::percentile_ms(double p) const {
  if (count_ == 0) return 0.0;
  uint64_t rank = std::max<uint64_t>(1, uint64_t(std::ceil(p / 100.0 * double(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return double(bucket_midpoint(i)) / 1e6;
  }
  return 0.0;
}

std::string format_summary_text(const RunInfo& info, const RunStats& stats) {
  std::string out;
  auto o = std::back_inserter(out);
  fmt::format_to(o, "target {}: {} connections on {} thread(s){}\n", info.target, info.connections,
                 info.threads, info.time_capped ? ", stopped by --duration" : "");
  fmt::format_to(o,
                 "messages: requested {}, attempted {}, accepted {}, temp-failed {}, rejected {}, "
                 "no reply {}\n",
                 info.requested, stats.attempted, stats.accepted, stats.temp_failed, stats.rejected,
                 stats.no_reply);
  fmt::format_to(o, "connections: opened {}, connection errors {}, given up {}\n", stats.connections,
                 stats.connection_errors, stats.slots_given_up);
  if (stats.tls_handshakes || stats.tls_failures)
    fmt::format_to(o, "tls: handshakes {}, resumed {}, failed {}\n", stats.tls_handshakes, stats.tls_resumed,
                   stats.tls_failures);
  if (!stats.last_connection_error.empty())
    fmt::format_to(o, "last connection error: {}\n", stats.last_connection_error);
  fmt::format_to(o, "reply codes: {}\n", stats.attempted ? codes_text(stats, false) : "none");
  fmt::format_to(o, "elapsed {:.3f} s, accepted {:.1f} msg/s\n", info.elapsed_s,
                 rate(stats.accepted, info.elapsed_s));
  double p50 = stats.latency.percentile_ms(50);
  double p99 = stats.latency.percentile_ms(99);
  fmt::format_to(o, "latency end-of-data to reply: p50 {:.3f} ms, p99 {:.3f} ms ({} samples)\n", p50, p99,
                 stats.latency.count());
  return out;
}

std::string format_summary_json(const RunInfo& info, const RunStats& stats) {
  double p50 = stats.latency.percentile_ms(50);
  double p99 = stats.latency.percentile_ms(99);
  // The target is an address literal, so it needs no JSON escaping.
  return fmt::format(
      "{{\"target\": \"{}\", \"connections\": {}, \"threads\": {}, \"requested\": {}, "
      "\"attempted\": {}, \"accepted\": {}, \"temp_failed\": {}, \"rejected\": {}, \"no_reply\": {}, "
      "\"connections_opened\": {}, \"connection_errors\": {}, \"slots_given_up\": {}, "
      "\"tls_handshakes\": {}, \"tls_resumed\": {}, \"tls_failures\": {}, \"codes\": {{{}}}, \"elapsed_s\": {:.3f}, "
      "\"accepted_per_s\": {:.1f}, \"latency_p50_ms\": {:.3f}, \"latency_p99_ms\": {:.3f}, "
      "\"time_capped\": {}, \"success\": {}}}\n",
      info.target, info.connections, info.threads, info.requested, stats.attempted, stats.accepted,
      stats.temp_failed, stats.rejected, stats.no_reply, stats.connections, stats.connection_errors,
      stats.slots_given_up, stats.tls_handshakes, stats.tls_resumed, stats.tls_failures, codes_text(stats, true), info.elapsed_s, rate(stats.accepted, info.elapsed_s), p50, p99,
      info.time_capped, run_succeeded(info, stats));
}

bool run_succeeded(const RunInfo& info, const RunStats& stats) {
  if (stats.accepted != stats.attempted) return false;
  if (info.time_capped) return stats.attempted > 0;
  return stats.attempted == info.requested;
}

}  // namespace ringmail::inject
