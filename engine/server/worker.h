// A worker thread: owns one Loop (ring, buffers, timers), its share of the SO_REUSEPORT
// listeners, the inbound sessions accepted on them, and one spool writer. Workers share nothing
// on the hot path; other threads talk to a worker only through Loop::post().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/net.h"
#include "common/result.h"
#include "engine/loop/loop.h"
#include "engine/delivery/delivery.h"
#include "engine/loop/ring_file_io.h"
#include "engine/net/acceptor.h"
#include "engine/server/listener_security.h"
#include "engine/smtp/server_session.h"
#include "queue/spool.h"
#include "routing/publisher.h"
#include "queue/spool_writer.h"

namespace ringmail::engine {

class InboundSession;

struct WorkerConfig {
  unsigned id = 0;                              // 0..workers-1; also the spool writer id
  int cpu = -1;                                 // pin the thread to this CPU; -1 = the scheduler decides
  std::vector<int> listen_fds;                  // this worker's SO_REUSEPORT sockets (owned)
  smtp::ServerConfig server;                    // protocol settings
  NetworkList relay_networks;                   // clients allowed to relay
  std::atomic<int>* open_connections = nullptr; // shared count of inbound connections
  int max_connections = 2000;                   // cap across all workers
  queue::Spool* spool = nullptr;                // the shared spool (writers are per worker)
  const routing::TablePublisher* routes = nullptr;  // connector table; null = no connectors (hold)
  DeliveryShared* delivery = nullptr;           // null = hold everything (no delivery)
  std::chrono::seconds shutdown_grace{10};      // how long busy sessions may finish on shutdown
  LoopOptions loop;                             // ring sizes
  std::shared_ptr<const ListenerSecurity> security;  // STARTTLS / --require-tls / AUTH; null = plain SMTP only
  std::string tracking_log_dir;                 // --tracking-log-dir; empty = no tracking log
  unsigned log_max_age_days = 30;               // --log-max-age: tracking log files kept this many days
};

class Worker final : private Acceptor::Handler {
 public:
  explicit Worker(WorkerConfig config);
  ~Worker();

  // Starts the thread and waits until its ring, spool writer and delivery exist; an error if they
  // could not. Nothing is accepted until open_listeners().
  Status start();
  // Thread-safe: arm the accepts (after every worker's delivery is registered in DeliveryShared).
  void open_listeners();
  Delivery* delivery() { return delivery_.get(); }
  // Thread-safe: stop accepting, let busy sessions finish (up to the grace period), sync the
  // spool, and end the thread. join() waits for that.
  void request_stop();
  void join();

  // For sessions (loop thread only).
  Loop& loop() { return *loop_; }
  queue::SpoolWriter& writer() { return *writer_; }
  const smtp::ServerConfig& server_config() const { return config_.server; }
  // This worker's server TLS context (null without --tls-cert) and the AUTH credentials (null without --auth-file).
  tls::TlsContext* server_tls() { return server_tls_.get(); }
  const CredentialStore* credentials() const { return config_.security ? config_.security->credentials.get() : nullptr; }
  // This worker's routing snapshot (lock-free reads; refreshed at the top of each loop iteration).
  // Null when the daemon runs without a connector file.
  const routing::Table* routes() const { return routes_ ? &routes_->table() : nullptr; }
  // Hands a freshly committed message to delivery (routes it with this worker's snapshot).
  // message_id: the message's Message-ID header, for the tracking log (empty when not known).
  void message_committed(queue::MessageRef msg, std::string_view message_id = {});
  TrackingLog* tracking() const { return tracking_.get(); }  // null without a tracking log
  void session_finished(InboundSession* s);

  struct Counters {
    std::atomic<uint64_t> accepted_connections{0};  // connections taken
    std::atomic<uint64_t> refused_connections{0};   // over --max-connections
    std::atomic<uint64_t> messages_committed{0};    // 250s given
    std::atomic<uint64_t> commit_failures{0};       // 451s because the spool failed
    std::atomic<uint64_t> tls_handshakes{0};        // STARTTLS handshakes completed
    std::atomic<uint64_t> tls_resumed{0};           // of those, resumed from a session ticket
    std::atomic<uint64_t> tls_failures{0};          // STARTTLS handshakes failed or timed out
    std::atomic<uint64_t> auth_failures{0};         // AUTH attempts refused with 535
    std::atomic<uint64_t> auth_successes{0};        // AUTH attempts accepted (235)
  };
  Counters& counters() { return counters_; }
  unsigned id() const { return config_.id; }

 private:
  void thread_main();
  void on_accepted(Acceptor& acceptor, int fd, const SocketAddress& peer) override;
  void on_acceptor_stopped(Acceptor& acceptor) override;
  void begin_stop();
  void on_grace_expired();
  void maybe_finish_stop();

  WorkerConfig config_;
  std::thread thread_;
  std::unique_ptr<Loop> loop_;                  // created on the worker thread
  std::unique_ptr<RingFileIo> file_io_;         // spool I/O on the ring
  std::unique_ptr<queue::SpoolWriter> writer_;  // this worker's spool segment writer
  std::unique_ptr<routing::TableReader> routes_;  // this worker's view of the connector table
  std::unique_ptr<Delivery> delivery_;          // next hops owned by this worker (null when holding)
  std::unique_ptr<tls::TlsContext> server_tls_; // STARTTLS for this worker's sessions (null without a certificate)
  std::unique_ptr<TrackingLog> tracking_;       // message-tracking log (null without --tracking-log-dir)
  bool delivery_stopping_ = false;              // delivery_->stop() called
  bool delivery_stopped_ = false;               // its done callback ran
  std::vector<std::unique_ptr<Acceptor>> acceptors_;  // one per listening socket
  size_t acceptors_stopped_ = 0;                // of acceptors_, after begin_stop()
  InboundSession* sessions_ = nullptr;          // intrusive list of live sessions
  size_t session_count_ = 0;
  bool stopping_ = false;                       // begin_stop() ran
  bool writer_closing_ = false;                 // writer_->close() called
  MemberTimer<Worker, &Worker::on_grace_expired> grace_timer_{this};
  Counters counters_;

  std::mutex start_mutex_;                      // start-up handshake with start()
  std::condition_variable start_cv_;
  bool start_done_ = false;
  std::optional<Error> start_error_;
};

}  // namespace ringmail::engine
