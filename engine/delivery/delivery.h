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
#include <mutex>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "common/net.h"
#include "engine/delivery/destination_health.h"
#include "engine/delivery/index_list.h"
#include "engine/delivery/local_submit.h"
#include "engine/logs/protocol_log.h"
#include "engine/logs/tracking_log.h"
#include "engine/loop/loop.h"
#include "engine/net/resolver.h"
#include "engine/smtp/client_config.h"
#include "engine/smtp/client_transaction.h"
#include "engine/smtp/delivery_outcome.h"
#include "queue/dsn.h"
#include "queue/journal.h"
#include "queue/queued_message.h"
#include "queue/retry_policy.h"
#include "queue/spool.h"
#include "routing/table.h"

namespace ringmail::engine {

class Delivery;
class OutboundSession;

// Recipients no connector routes (Exchange's Unreachable queue). They wait in memory (their
// state stays pending in the spool) until a reload routes them or they expire.
struct UnreachableEntry {
  queue::MessageRef msg;        // the message
  std::vector<uint32_t> rcpts;  // its recipients that had no route
  std::string reason;           // why, from the routing table
};

// What all workers' delivery shares: the workers (to hand work to a next hop's owner), the global
// connection cap and counters. Immutable after start-up except the atomics and the Unreachable
// queue (under its mutex).
struct DeliveryShared {
  std::vector<Delivery*> workers;                // index = worker id; filled before any work flows
  queue::Spool* spool = nullptr;                 // for reading bodies and releasing records
  std::string hostname;                          // EHLO name when a connector has no fqdn
  queue::RetryPolicy retry;                      // back-off for deferred recipients
  int max_outbound = 10000;                      // outbound sessions across all workers
  std::chrono::seconds shutdown_grace{10};       // on stop, transactions under way may finish this long
  std::atomic<int> outbound{0};                  // outbound sessions open now
  std::atomic<uint64_t> delivered{0};            // recipients accepted by a next hop
  std::atomic<uint64_t> deferred{0};             // recipient attempts deferred
  std::atomic<uint64_t> failed{0};               // recipients failed permanently
  std::atomic<uint64_t> unreachable{0};          // recipients with no connector (held)
  std::atomic<uint64_t> messages_done{0};        // messages whose every recipient is final
  std::atomic<uint64_t> expired{0};              // recipients failed because the message expired
  std::atomic<uint64_t> dsns{0};                 // DSNs (failure and delay) submitted
  std::atomic<int> starved{0};                   // queues (all workers) waiting for a session slot
  std::atomic<uint64_t> tls_handshakes{0}, tls_resumed{0};  // outbound STARTTLS handshakes; of those resumed
  routing::dns::DnsSettings dns;                 // resolver settings (servers, caches, address cap)
  std::vector<std::string> self_names;           // our host names, lower case (MX loop guard)
  std::vector<SocketAddress> self_addresses;     // our addresses, port ignored (MX loop guard)
  std::string protocol_log_dir;                  // --protocol-log-dir; empty: no protocol log
  unsigned log_max_age_days = 30;                // --log-max-age: protocol log files kept this many days
  std::mutex unreachable_mutex;                  // guards unreachable_queue
  std::vector<UnreachableEntry> unreachable_queue;  // see UnreachableEntry
};

// Routes the Unreachable queue again with `table` (after a reload); what is still unroutable stays.
// Returns how many recipients found a route. Any thread.
size_t redispatch_unreachable(DeliveryShared& shared, const std::shared_ptr<const routing::Table>& table);

// Routes every non-final recipient of `msg` with `table` and hands each group to the worker that
// owns its next hop (through Loop::post). Any thread.
void dispatch_message(DeliveryShared& shared, const std::shared_ptr<const routing::Table>& table,
                      const queue::MessageRef& msg);

// One message's recipients for one next hop while they wait (queued, deferred or parked): kept
// small and by value, because a queue of a million recipients is mostly these (issue 6's memory
// target). The spool has the body; it is read only when a session can use it.
struct QueuedWork {
  queue::MessageRef msg;         // the message
  IndexList rcpts;               // recipient indices in msg->env.rcpts, txn order
};

// A waiting work item with its retry time, in the per-worker deferred heap.
struct DeferredWork {
  MonoTime due;                  // not before
  struct NextHop* hop;           // owner queue
  QueuedWork work;               // what waits
  // Delivery::deferred_ is a min-heap on the retry time: the comparison for std::push_heap & co.
  static bool later(const DeferredWork& a, const DeferredWork& b) { return a.due > b.due; }
};

// One message's recipients for one next hop once its body is loaded: the unit a session takes as
// one transaction.
struct DeliveryWork {
  struct NextHop* hop = nullptr;               // owner queue
  queue::MessageRef msg;                       // the message
  std::vector<uint32_t> rcpts;                 // recipient indices in msg->env.rcpts, txn order
  std::vector<uint8_t> record;                 // spool record read back
  std::string body;                            // decoded body (what is sent)
  smtp::OutboundTransaction txn;               // what the session sends; body points into `body`
  std::vector<uint32_t> retry_now;             // this attempt: recipients to try on the next host
  std::vector<uint32_t> defer;                 // this attempt: recipients deferred
  std::string defer_reason;                    // last deferral text, for logs and DSNs
  struct Bounce {                              // a recipient that failed in this attempt
    uint32_t rcpt;                             // index in msg->env.rcpts
    std::string status;                        // enhanced status code, e.g. "5.1.1"
    std::string diagnostic;                    // "smtp; 550 5.1.1 ..." (the reply) or our own text
  };
  std::vector<Bounce> bounced;                 // this attempt's permanent failures (one DSN for them)
  std::vector<Bounce> relayed;                 // delivered with NOTIFY=SUCCESS to a next hop without DSN
  std::string remote;                          // host of the last attempt (DSN Remote-MTA)
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
  std::string destination;                           // recipient domain (DNS) or "smart-hosts"
  std::vector<SocketAddress> hosts;                  // addresses to try, in order
  std::vector<std::string> host_names;               // DNS-routed: the MX name of each address (TLS verify, SNI)
  std::string no_hosts_reason;                       // why `hosts` is empty (held, not attempted)
  unsigned resolving = 0;                            // smart-host names / the MX being resolved
  std::shared_ptr<const routing::dns::MxAnswer> answer;  // DNS-routed: the MX answer `hosts` came from
  MonoTime answer_expires{};                         // DNS-routed: look the MX up again after this
  smtp::ClientConfig client;                         // session settings from the connector
  size_t cursor = 0;                                 // next host to connect to
  std::deque<QueuedWork> waiting;                    // due, body not loaded
  std::deque<DeliveryWork*> ready;                   // body loaded, waiting for a session
  unsigned loading = 0;                              // body reads in flight
  unsigned sessions = 0;                             // sessions open (connecting or connected)
  unsigned opening = 0;                              // of those, not yet ready for a transaction
  std::vector<OutboundSession*> idle;                // connected sessions waiting for work
  DestinationHealth health;                          // dead-destination detection: Retry, probing
  bool suspended = false;                            // by an operator: no new sessions, nothing loaded
  bool starved = false;                              // waits in Delivery::starved_ for a session slot
  std::deque<QueuedWork> parked;                     // work of suspended messages
  std::string last_error;                            // for logs and the admin view
  queue::RetryPolicy retry;                          // the daemon's policy with the connector's overrides
  mutable WallTime oldest{WallTime::max()};          // earliest arrival queued since the queue was last empty

  std::string id() const { return connector->name + ":" + destination; }  // the admin plane's queue id
};

// What the admin view shows of one next-hop queue (Exchange's Get-Queue columns).
struct QueueView {
  std::string id;                // "connector:destination", stable for the queue's life
  std::string connector;         // connector name
  std::string destination;       // recipient domain or "smart hosts"
  std::string state;             // Active | Ready | Retry | Suspended
  size_t messages = 0;           // distinct messages with work in this queue
  size_t recipients = 0;         // recipients waiting or in delivery
  WallTime oldest{};             // arrival of the oldest message (epoch if none)
  std::string last_error;        // last failure text
  WallTime next_retry{};         // when Retry ends (epoch unless in Retry)
};

// One message as the admin view shows it, from the worker(s) holding its recipients.
struct MessageView {
  queue::MessageRef msg;         // envelope and per-recipient state
  std::vector<std::string> queues;  // queue ids holding its recipients
  bool suspended = false;        // held by an operator
};

// One recipient a worker holds, as of the moment asked (read on the owner's thread).
struct RecipientView {
  uint32_t rcpt = 0;                         // index in the envelope
  std::string queue;                         // queue id
  queue::RcptState state = queue::RcptState::kPending;  // pending or deferred
  uint32_t attempts = 0;                     // so far
  WallTime next_attempt{};                   // deferred: when
  std::string last_error;                    // the queue's last error
  bool suspended = false;                    // message or queue suspended
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

  // Admin operations (this worker's thread; the admin plane posts them). Queue ids as QueueView::id.
  std::vector<QueueView> queue_views() const;
  std::vector<queue::MessageRef> messages_in(const std::string& queue_id) const;
  void find_message(queue::QueueId id, MessageView* into) const;
  bool suspend_queue(const std::string& queue_id, bool suspend);  // false: no such queue here
  bool retry_queue(const std::string& queue_id);                  // ends Retry and back-off now
  size_t suspend_message(queue::QueueId id, bool suspend);        // work items affected
  size_t retry_message(queue::QueueId id);                        // deferred work made due now
  size_t remove_message(queue::QueueId id, bool with_dsn);        // recipients failed here
  void recipient_views(queue::QueueId id, std::vector<RecipientView>* out) const;  // those held here
  routing::dns::CacheStats dns_stats() const;  // this worker's MX answer cache
  // Fails recipients held outside any queue (the Unreachable queue) as the administrator asked.
  void fail_recipients(const queue::MessageRef& msg, const std::vector<uint32_t>& rcpts, bool with_dsn);

  // Where DSNs go: committed through this worker's spool writer, then `committed` (the worker
  // routes them like any received message). Call before start(); without it DSNs are logged and
  // dropped.
  void attach_writer(queue::SpoolWriter& writer, std::function<void(queue::MessageRef)> committed);

  // For sessions.
  DeliveryWork* take_ready(NextHop& hop);
  // next_hop_dsn: the server announced DSN (NOTIFY went on with the recipient).
  void on_recipient_result(DeliveryWork& work, size_t txn_index, const smtp::DeliveryOutcome& outcome,
                           const std::string& host, bool next_hop_dsn = true);
  void on_transaction_done(DeliveryWork& work);
  void on_session_result(NextHop& hop, const smtp::DeliveryOutcome& outcome, const std::string& host);
  void session_idle(NextHop& hop, OutboundSession* s);
  void session_busy(NextHop& hop, OutboundSession* s);
  void session_released(NextHop& hop, OutboundSession* s);
  void session_opened(NextHop& hop) { --hop.opening; }  // ready for work (or gone before that)
  // This worker's protocol log (connectors with protocol_log = true), or null without
  // --protocol-log-dir; and a name for a new session's lines ("<worker>.<serial>").
  ProtocolLog* protocol_log();
  // Where delivery events go (deliver, bounce, defer, expire, DSN); null = nowhere. Before start().
  void set_tracking_log(TrackingLog* log) { tracking_ = log; }
  std::string new_session_name() { return fmt::format("{}.{}", id_, ++session_serial_); }

 private:
  NextHop& hop_for(std::shared_ptr<const routing::Table> table, const routing::Connector* connector,
                   const std::string& key, const std::string& destination);
  void pump(NextHop& hop);    // read ahead, hand ready work to idle sessions, open sessions
  void refill(NextHop& hop);  // read ahead only
  queue::RetryPolicy policy_for(const routing::Connector& c) const;  // shared_.retry + the connector's overrides
  void resolve_hosts(NextHop& hop);
  void collect_smart_hosts(NextHop& hop, const std::vector<std::vector<SocketAddress>>& results);
  void resolve_mx(NextHop& hop);
  void on_mx(NextHop& hop, std::shared_ptr<const routing::dns::MxAnswer> answer);
  // The addresses of one attempt from hop.answer: equal preferences shuffled now, capped, and
  // the MX records at or above our own preference dropped (RFC 5321 §5.1 loop guard). Empty
  // with `loop` set when only we (or worse) are left.
  std::vector<SocketAddress> mx_addresses(const NextHop& hop, bool* loop, std::vector<std::string>* names);
  void fail_all(NextHop& hop, const std::string& status, const std::string& diagnostic);
  void load(NextHop& hop, QueuedWork qw);
  void on_loaded(DeliveryWork* w, int result);
  void set_recipients(DeliveryWork& w);
  // Counts a failed attempt for `rcpts` of `msg` and schedules the next (or expires them).
  // `body` is the message when loaded (for DSNs), else empty.
  void defer(NextHop& hop, const queue::MessageRef& msg, std::vector<uint32_t> rcpts, const std::string& why,
             const std::string& remote, std::string_view body);
  void schedule(NextHop& hop, QueuedWork qw, MonoTime due);
  void defer_all(NextHop& hop, const std::string& host);  // everything waiting or ready
  void mark_up(NextHop& hop);  // a delivery worked: end dead-destination probing
  void serve_starved();        // hand free session slots to queues waiting for one
  void park(NextHop& hop, DeliveryWork* w);  // a loaded work of a suspended message: drop the body
  bool hop_open(const NextHop& hop) const;  // may load bodies and open sessions now
  void unsuspend_into(NextHop& hop, queue::QueueId id);
  void send_dsn(const queue::QueuedMessage& msg, queue::dsn::ReportKind kind, const std::vector<DeliveryWork::Bounce>& rcpts,
                const std::string& remote, std::string_view original, const queue::RetryPolicy* policy = nullptr);
  NextHop* hop_by_id(const std::string& queue_id) const;
  // Calls fn(msg, rcpts) for every work item of `hop` (waiting, ready, parked, deferred).
  template <typename Fn> void for_each_work(const NextHop& hop, Fn fn) const;
  void finish(const queue::MessageRef& msg, uint32_t rcpt, queue::RcptState state);
  void on_tick();
  void on_stop_grace();  // stop()'s grace period is over: cut the sessions still busy
  void maybe_stopped();
  friend struct DeliveryWork;

  unsigned id_;
  Loop& loop_;
  queue::FileIo& io_;
  DeliveryShared& shared_;
  std::unique_ptr<queue::DeliveryJournal> journal_;  // per-recipient outcomes (lazily synced)
  std::unordered_map<std::string, std::unique_ptr<NextHop>> hops_;  // by key
  std::vector<DeferredWork> deferred_;                // min-heap by due: waiting for their retry time
  std::deque<NextHop*> starved_;                      // queues with work and no session, all slots taken
  std::vector<OutboundSession*> sessions_;            // every open session (for stop)
  MemberTimer<Delivery, &Delivery::on_tick> tick_{this};
  MemberTimer<Delivery, &Delivery::on_stop_grace> stop_grace_{this};  // stop(): end of the grace period
  std::mt19937_64 rng_;                               // jitter
  std::unique_ptr<Resolver> resolver_;                // smart-host names (c-ares on this ring); last member
  bool stopping_ = false;
  bool journal_closing_ = false;
  std::function<void()> stop_done_;
  std::unique_ptr<LocalSubmitter> local_;             // DSNs into the spool (see attach_writer)
  std::unique_ptr<ProtocolLog> protocol_log_;         // made at the first session that logs
  uint64_t session_serial_ = 0;                       // names sessions in the protocol log
  TrackingLog* tracking_ = nullptr;                   // the worker's message-tracking log, if any
};

}  // namespace ringmail::engine
