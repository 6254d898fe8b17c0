// Counting for ringmail-inject: per-worker outcome counters and latencies, merged at the end
// into the summary (text for people, one JSON object for scripts), plus the shared progress
// counters the progress line reads while workers run.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "tools/inject/inject_session.h"

namespace ringmail::inject {

// End-of-data latencies in log-linear buckets (64 per power of two: under 1.6 % error), so a
// long run needs 32 KiB per worker instead of memory per message.
class LatencyHistogram {
 public:
  void add(int64_t ns);
  void merge(const LatencyHistogram& other);
  uint64_t count() const { return count_; }
  // Nearest-rank percentile (0 < p <= 100) in milliseconds, as the midpoint of its bucket; 0 when empty.
  double percentile_ms(double p) const;

 private:
  static constexpr int kSubBuckets = 64;              // per power of two
  std::array<uint64_t, kSubBuckets * 64> buckets_{};  // index from bucket_index()
  uint64_t count_ = 0;                                      // samples added
};

// Outcomes seen by one worker (single-threaded), or by the whole run after merge().
struct RunStats {
  uint64_t attempted = 0;          // messages claimed and finished (any outcome)
  uint64_t accepted = 0;           // final reply 2xx
  uint64_t temp_failed = 0;        // final reply 4xx
  uint64_t rejected = 0;           // final reply 5xx
  uint64_t no_reply = 0;           // connection broke before a final reply (code 000)
  uint64_t connections = 0;        // connections established
  uint64_t connection_errors = 0;  // refused/failed connects, broken or timed-out sessions, 421
  uint64_t slots_given_up = 0;     // connection slots that stopped after --max-retries failures
  uint64_t tls_handshakes = 0;     // --starttls: TLS handshakes completed
  uint64_t tls_resumed = 0;        // of those, resumed sessions
  uint64_t tls_failures = 0;       // --starttls: handshakes that failed
  std::string last_connection_error;  // the most recent reason, for the summary
  std::array<uint64_t, 600> codes{};  // messages per final reply code; [0] = no reply
  LatencyHistogram latency;           // end-of-data to final reply, for messages that sent DATA

  void record(const MessageOutcome& outcome);
  void merge(const RunStats& other);
};

// Live totals for the progress line, updated by workers with relaxed atomics.
struct ProgressCounters {
  std::atomic<uint64_t> attempted{0};  // messages finished
  std::atomic<uint64_t> accepted{0};   // of those, 2xx
};

// The facts of a run besides the counters.
struct RunInfo {
  std::string target;        // "127.0.0.1:2525"
  int connections = 0;       // concurrent connections requested
  int threads = 1;           // event loops
  uint64_t requested = 0;    // --count
  double elapsed_s = 0;      // wall-clock time of the load
  bool time_capped = false;  // --duration ended the run before --count
};

// The human-readable summary (several lines, ending with '\n').
std::string format_summary_text(const RunInfo& info, const RunStats& stats);
// The summary as one JSON object on one line, ending with '\n'.
std::string format_summary_json(const RunInfo& info, const RunStats& stats);
// Whether every requested message (or every attempted one, if the run was time-capped) got 2xx.
bool run_succeeded(const RunInfo& info, const RunStats& stats);

}  // namespace ringmail::inject
