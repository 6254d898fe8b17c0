// One event loop of ringmail-inject: non-blocking sockets on one epoll instance, running a
// slice of the connections. Several loops (one per --threads) share only the message counter,
// the outcome log and the progress counters. No io_uring and no engine I/O code on purpose: the
// injector must stay independent of what it measures. The one engine piece used is the TLS session
// over memory BIOs (engine/tls, no I/O of its own) for --starttls, with one client context per loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "engine/tls/tls_context.h"
#include "tools/inject/inject_options.h"
#include "tools/inject/inject_session.h"
#include "tools/inject/outcome_log.h"
#include "tools/inject/run_stats.h"

namespace ringmail::inject {

// State every loop of a run shares. Thread-safe members only, plus read-only settings.
struct SharedRun {
  const InjectOptions* options = nullptr;  // the parsed flags
  const OutcomeLog* log = nullptr;         // --log, may be closed
  MonoTime start;                          // when the load began
  MonoTime stop_starting;                  // no new message after this (--duration), or max()
  MonoTime hard_stop;                      // abort in-flight work after this, or max()
  std::atomic<uint64_t> next_message{0};   // next message number to claim
  std::atomic<bool> interrupted{false};    // SIGINT/SIGTERM: start no new message
  std::atomic<bool> time_capped{false};    // some loop refused a message because of --duration
  ProgressCounters progress;               // live totals
};

class LoadLoop final : public SessionHost {
 public:
  // Runs `connections` concurrent connections; `seed` feeds Message-ID randomness.
  LoadLoop(SharedRun& run, int connections, uint64_t seed);
  ~LoadLoop() override;
  LoadLoop(const LoadLoop&) = delete;
  LoadLoop& operator=(const LoadLoop&) = delete;

  // Runs until no slot can make progress (messages exhausted, time up, or retries spent).
  Status run();
  RunStats& stats() { return stats_; }

  // SessionHost
  std::optional<uint64_t> claim_message() override;
  std::string_view date_header() override;
  void message_done(const MessageOutcome& outcome) override;

 private:
  struct Slot;

  bool messages_remain() const;
  void start_connect(Slot& slot);
  void on_event(Slot& slot, uint32_t events);
  void on_connect_result(Slot& slot);
  bool read_and_handle(Slot& slot);
  bool flush(Slot& slot);
  // Received bytes to the session, decrypted first once TLS is on. On kFailed *why may say more.
  SessionStatus deliver(Slot& slot, std::string_view bytes, std::string* why);
  // The session asked for STARTTLS (its 220 arrived): start the client handshake.
  SessionStatus begin_tls(Slot& slot, std::string* why);
  void set_want_write(Slot& slot, bool want);
  // Closes the slot's socket; schedules the reconnect (or gives the slot up). `reason` overrides
  // the session's own failure reason for failures the loop saw first (connect, send).
  void end_session(Slot& slot, SessionStatus status, bool count_as_error, std::string_view reason = {});
  void check_timers();

  SharedRun& run_;                      // shared with the other loops
  MessageBuilder builder_;              // this loop's messages
  RunStats stats_;                      // this loop's outcomes
  std::vector<std::unique_ptr<Slot>> slots_;  // one per connection; stable addresses for epoll
  int epoll_fd_ = -1;                   // the loop's epoll instance
  MonoTime now_;                        // time of the current iteration
  std::vector<char> read_buffer_;       // reused for every read
  std::unique_ptr<tls::TlsContext> tls_context_;  // --starttls: this loop's client context (session cache)
  std::string tls_cache_key_;           // resumption key: the target address
  std::string plain_;                   // decrypted input, reused
  std::string date_;                    // cached Date: header value
  int64_t date_second_ = -1;            // wall-clock second date_ was made for
};

}  // namespace ringmail::inject
