// Outbound delivery on one worker: the next-hop queues this worker owns (next hops are sharded
// to workers by a hash of their key, so their counters are local), loading message bodies from the
// spool, opening outbound sessions within the per-destination and global limits, recording each
// recipient's outcome in the delivery journal, deferring with back-off, and releasing a message's
// spool record when its last recipient is final. Protocol code is in engine/smtp; sessions in
// outbound_session.h.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/net.h"
#include "engine/loop/loop.h"
#include "engine/net/resolver.h"
#include "engine/smtp/client_config.h"
#include "engine/smtp/client_transaction.h"
#include "engine/smtp/delivery_outcome.h"
#include "queue/journal.h"
#include "queue/queued_message.h"
#include "queue/retry_policy.h"
#include "queue/spool.h"
#include "routing/table.h"

namespace ringmail::engine {

class Delivery;
class OutboundSession;

// What all workers' delivery shares: the workers (to hand work to a next hop's owner), the global
// connection cap and counters. Immutable after start-up except the atomics.
struct DeliveryShared {
  std::vector<Delivery*> workers;                // index = worker id; filled before any work flows
  queue::Spool* spool = nullptr;                 // for reading bodies and releasing records
  std::string hostname;                          // EHLO name when a connector has no fqdn
  queue::RetryPolicy retry;                      // back-off for deferred recipients
  int max_outbound = 10000;                      // outbound sessions across all workers
  std::atomic<int> outbound{0};                  // outbound sessions open now
  std::atomic<uint64_t> delivered{0};            // recipients accepted by a next hop
  std::atomic<uint64_t> deferred{0};             // recipient attempts deferred
  std::atomic<uint64_t> failed{0};               // recipients failed permanently
  std::atomic<uint64_t> unreachable{0};          // recipients with no connector (held)
  std::atomic<uint64_t> messages_done{0};        // messages whose every recipient is final
};

// Routes every non-final recipient of `msg` with `table` and hands each group to the worker that
// owns its next hop (through Loop::post). Any thread.
void dispatch_message(DeliveryShared& shared, const std::shared_ptr<const routing::Table>& table,
                      const queue::MessageRef& msg);

// One message's recipients for one next hop: the unit a session takes as one transaction.
struct DeliveryWork {
  struct NextHop* hop = nullptr;               // owner queue
  queue::MessageRef msg;                       // the message
  std::vector<uint32_t> rcpts;                 // recipient indices in msg->env.rcpts, txn order
  std::vector<uint8_t> record;                 // spool record read back
  std::string body;                            // decoded body (what is sent)
  smtp::OutboundTransaction txn;               // what the session sends; body points into `body`
  std::vector<uint32_t> retry_now;             // this attempt: recipients to try on the next host
  std::vector<uint32_t> defer;                 // this attempt: recipients deferred
  std::string defer_reason;                    // last deferral text, for logs
  MonoTime due{};                              // not before (deferred work)
  Delivery* delivery = nullptr;                // for the read completion
  struct ReadOp final : queue::FileIo::Op {
    DeliveryWork* work = nullptr;
    void complete(int result) override;
  } read_op;
};

struct NextHop {
  std::string key;                                   // connector name + destination
  std::shared_ptr<const routing::Table> table;       // keeps `connector` alive across reloads
  const routing::Connector* connector = nullptr;     // the route
  std::string destination;                           // recipient domain (DNS) or "smart hosts"
  std::vector<SocketAddress> hosts;                  // addresses to try, in order
  std::string no_hosts_reason;                       // why `hosts` is empty (held, not attempted)
  unsigned resolving = 0;                            // smart-host names being resolved
  smtp::ClientConfig client;                         // session settings from the connector
  size_t cursor = 0;                                 // next host to connect to
  unsigned consecutive_failures = 0;                 // sessions that could not use a host, in a row
  std::deque<DeliveryWork*> waiting;                 // due, body not loaded
  std::deque<DeliveryWork*> ready;                   // body loaded, waiting for a session
  unsigned loading = 0;                              // body reads in flight
  unsigned sessions = 0;                             // sessions open (connecting or connected)
  std::vector<OutboundSession*> idle;                // connected sessions waiting for work
  MonoTime retry_at{};                               // in Retry until then (all hosts failed)
  std::string last_error;                            // for logs (and the admin issue)
};

class Delivery {
 public:
  Delivery(unsigned id, Loop& loop, queue::FileIo& io, DeliveryShared& shared);
  ~Delivery();
  Status start();  // opens this worker's delivery journal; arms the housekeeping tick
  unsigned id() const { return id_; }
  Loop& loop() { return loop_; }
  DeliveryShared& shared() { return shared_; }

  // On this worker's thread (posted by dispatch_message).
  void enqueue(std::shared_ptr<const routing::Table> table, const routing::Connector* connector,
               std::string key, std::string destination, queue::MessageRef msg, std::vector<uint32_t> rcpts);
  // Stops: idle sessions QUIT, busy ones are cut (their recipients are retried after restart),
  // the journal is synced; `done` runs when nothing is in flight.
  void stop(std::function<void()> done);

  // For sessions.
  DeliveryWork* take_ready(NextHop& hop);
  void on_recipient_result(DeliveryWork& work, size_t txn_index, const smtp::DeliveryOutcome& outcome,
                           const std::string& host);
  void on_transaction_done(DeliveryWork& work);
  void on_session_result(NextHop& hop, const smtp::DeliveryOutcome& outcome, const std::string& host);
  void session_idle(NextHop& hop, OutboundSession* s);
  void session_busy(NextHop& hop, OutboundSession* s);
  void session_released(NextHop& hop, OutboundSession* s);

 private:
  class Tick final : public Timer {
   public:
    explicit Tick(Delivery* d) : d_(d) {}
   private:
    void fire() override { d_->on_tick(); }
    Delivery* d_;
  };
  NextHop& hop_for(std::shared_ptr<const routing::Table> table, const routing::Connector* connector,
                   const std::string& key, const std::string& destination);
  void pump(NextHop& hop);    // read ahead, hand ready work to idle sessions, open sessions
  void refill(NextHop& hop);  // read ahead only
  void resolve_hosts(NextHop& hop);
  void load(DeliveryWork* w);
  void on_loaded(DeliveryWork* w, int result);
  void defer_work(DeliveryWork* w, const std::string& why);
  void finish(DeliveryWork& work, uint32_t rcpt, queue::RcptState state);
  void on_tick();
  void maybe_stopped();
  friend struct DeliveryWork;

  unsigned id_;
  Loop& loop_;
  queue::FileIo& io_;
  DeliveryShared& shared_;
  std::unique_ptr<queue::DeliveryJournal> journal_;  // per-recipient outcomes (lazily synced)
  std::unordered_map<std::string, std::unique_ptr<NextHop>> hops_;  // by key
  std::multimap<MonoTime, DeliveryWork*> deferred_;   // waiting for their retry time
  std::vector<OutboundSession*> sessions_;            // every open session (for stop)
  Tick tick_{this};
  std::mt19937_64 rng_;                               // jitter
  std::unique_ptr<Resolver> resolver_;                // smart-host names (c-ares on this ring); last member
  bool stopping_ = false;
  bool journal_closing_ = false;
  std::function<void()> stop_done_;
};

}  // namespace ringmail::engine
