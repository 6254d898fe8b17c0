// A ringmail-sink worker thread: its own Loop (ring, provided buffers, timers), its SO_REUSEPORT
// share of every listener, multishot accept, and the connections accepted there. Workers share
// only SinkShared (relaxed atomic counters, the message number, the recorder). Other threads talk
// to a worker only through request_stop(), which posts to its loop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "engine/loop/loop.h"
#include "engine/net/acceptor.h"
#include "engine/tls/tls_context.h"
#include "tools/sink/fault_injector.h"
#include "tools/sink/message_recorder.h"
#include "tools/sink/sink_options.h"

namespace ringmail::sink {

class SinkConnection;

// Process-wide counters; each is written with relaxed atomics by any worker.
struct SinkCounters {
  std::atomic<uint64_t> connections{0};       // connections accepted
  std::atomic<uint64_t> open_connections{0};  // connections currently open
  std::atomic<uint64_t> messages{0};          // messages accepted (250 after DATA)
  std::atomic<uint64_t> rcpts{0};             // recipients of accepted messages
  std::atomic<uint64_t> rcpt_faults{0};       // RCPTs answered with --rcpt-reply
  std::atomic<uint64_t> data_faults{0};       // DATAs answered with --data-reply
  std::atomic<uint64_t> dropped{0};           // connections cut mid-DATA on purpose
  std::atomic<uint64_t> oversize{0};          // messages refused for --max-message-size
  std::atomic<uint64_t> message_bytes{0};     // bytes of accepted messages (unstuffed)
  std::atomic<uint64_t> bytes_received{0};    // every byte read from clients (plaintext under TLS)
  std::atomic<uint64_t> tls_handshakes{0};    // STARTTLS handshakes completed
  std::atomic<uint64_t> tls_resumed{0};       // of those, resumed sessions (session tickets)
  std::atomic<uint64_t> tls_failures{0};      // STARTTLS handshakes that failed
};

// What all workers share; lives in main() for the whole run.
struct SinkShared {
  const SinkOptions* options = nullptr;       // parsed flags
  MessageRecorder* recorder = nullptr;        // --record/--save-dir, or null
  tls::TlsContext* tls = nullptr;             // --tls-cert/--tls-key: one server context for every
                                              // worker (so a ticket resumes on any worker), or null
  std::vector<std::string> listen_names;      // bound address of listener i ("127.0.0.1:2525")
  SinkCounters counters;
  std::atomic<uint64_t> last_message_number{0};  // SINK<n> numbers, unique across workers
};

class SinkWorker final : private engine::Acceptor::Handler {
 public:
  SinkWorker(unsigned id, SinkShared& shared, std::vector<int> listen_fds);
  ~SinkWorker();

  // Starts the thread; returns once its loop exists (or with the error that prevented it).
  Status start();
  // Thread-safe: stop accepting, let connections flush their replies and finish (aborting any
  // still open after a 2 s grace period), then end the thread. join() waits for that.
  void request_stop();
  void join();

  // For connections (loop thread only).
  engine::Loop& loop() { return *loop_; }
  FaultInjector& faults() { return faults_; }
  SinkShared& shared() { return shared_; }
  void connection_finished(SinkConnection* c);

 private:
  void thread_main();
  void on_accepted(engine::Acceptor& acceptor, int fd, const SocketAddress& peer) override;
  void on_acceptor_stopped(engine::Acceptor& acceptor) override;
  void begin_stop();
  void on_grace_expired();
  void maybe_finish_stop();

  unsigned id_;
  SinkShared& shared_;
  std::vector<int> listen_fds_;                 // owned; closed when the worker ends
  FaultInjector faults_;                        // this worker's deterministic fault stream
  std::thread thread_;
  std::unique_ptr<engine::Loop> loop_;          // created on the worker thread
  std::vector<std::unique_ptr<engine::Acceptor>> acceptors_;  // one per listening socket
  size_t acceptors_stopped_ = 0;                // of acceptors_, after begin_stop()
  SinkConnection* connections_ = nullptr;       // intrusive list of live connections
  size_t connection_count_ = 0;
  bool stopping_ = false;                       // begin_stop() ran
  engine::MemberTimer<SinkWorker, &SinkWorker::on_grace_expired> grace_timer_{this};

  std::mutex start_mutex_;                      // start-up handshake with start()
  std::condition_variable start_cv_;
  bool start_done_ = false;
  std::optional<Error> start_error_;
};

}  // namespace ringmail::sink
