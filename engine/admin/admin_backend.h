// The admin plane's view of the queues: plain structs describing queues and messages, and the
// AdminBackend interface the daemon implements over its workers. Every call is synchronous from
// the admin thread's point of view (the daemon posts to the loops and waits); the admin server
// makes one call at a time. No HTTP or JSON here: that is admin_server and admin_render.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"

namespace ringmail::admin {

// Queue states as Exchange operators know them, plus Unreachable for recipients with no connector.
enum class QueueState : uint8_t {
  kActive = 0,       // sessions open, delivering
  kReady = 1,        // waiting for a connection slot
  kRetry = 2,        // waiting after failures until next_retry
  kSuspended = 3,    // held by an operator
  kUnreachable = 4,  // no connector matched; re-routed after a reload
};
inline constexpr size_t kQueueStateCount = 5;
const char* queue_state_name(QueueState s);  // "Active", "Ready", "Retry", "Suspended", "Unreachable"

// Per-recipient states shown to operators.
enum class RecipientState : uint8_t {
  kPending = 0,    // queued, no attempt yet (or retry now)
  kDeferred = 1,   // temporary failure, waiting for next_retry
  kSuspended = 2,  // held by an operator (message or queue suspended)
  kDelivered = 3,  // final: accepted by the next hop
  kFailed = 4,     // final: bounced or removed
};
const char* recipient_state_name(RecipientState s);  // "Pending", "Deferred", ...

struct QueueInfo {
  std::string id;                  // stable queue id used in URLs and the CLI (next-hop key)
  std::string next_hop;            // destination domain or smart host
  std::string connector;           // send connector name; empty for Unreachable
  QueueState state = QueueState::kReady;  // see QueueState
  uint64_t messages = 0;           // messages with at least one recipient here
  uint64_t recipients = 0;         // recipients waiting here
  std::chrono::seconds oldest_age{0};  // age of the oldest message here
  std::string last_error;          // last failure reply or network error; empty if none
  WallTime next_retry{};           // Retry state: when; epoch = not scheduled
};

struct RecipientInfo {
  std::string address;             // forward path
  std::string queue;               // id of the queue holding it (empty once final)
  RecipientState state = RecipientState::kPending;  // see RecipientState
  uint32_t attempts = 0;           // delivery attempts so far
  std::string last_error;          // last failure; empty if none
  WallTime next_retry{};           // Deferred: when; epoch = not scheduled
};

struct MessageInfo {
  std::string id;                  // spool queue id (the one in "250 queued as ID")
  std::string sender;              // envelope sender; empty = null sender
  uint64_t size = 0;               // message bytes
  WallTime arrival{};              // when it was accepted
  bool suspended = false;          // held by an operator
  std::vector<RecipientInfo> recipients;  // in RCPT order
};

struct MessageList {
  std::vector<MessageInfo> messages;  // at most the limit asked for, oldest first
  uint64_t total = 0;                 // messages in the queue (may exceed messages.size())
};

// Outcome of an operator action.
enum class ActionStatus : uint8_t {
  kOk = 0,        // done
  kNotFound = 1,  // no such queue or message
  kRejected = 2,  // not possible in the current state (e.g. resume of Unreachable)
  kFailed = 3,    // tried and failed (e.g. the new config does not load)
};
struct ActionResult {
  ActionStatus status = ActionStatus::kOk;  // see ActionStatus
  std::string message;                      // for operators: what was done or why not
  bool ok() const { return status == ActionStatus::kOk; }
};

class AdminBackend {
 public:
  virtual ~AdminBackend() = default;

  virtual std::vector<QueueInfo> list_queues() = 0;
  // nullopt: no such queue.
  virtual std::optional<MessageList> list_messages(std::string_view queue_id, size_t limit) = 0;
  virtual std::optional<MessageInfo> find_message(std::string_view message_id) = 0;

  // Retry now: skips the back-off of a queue (all its recipients) or of one message.
  virtual ActionResult retry_queue(std::string_view queue_id) = 0;
  virtual ActionResult suspend_queue(std::string_view queue_id) = 0;
  virtual ActionResult resume_queue(std::string_view queue_id) = 0;
  virtual ActionResult retry_message(std::string_view message_id) = 0;
  virtual ActionResult suspend_message(std::string_view message_id) = 0;
  virtual ActionResult resume_message(std::string_view message_id) = 0;
  // Removes a message; with_dsn sends a failure report to the sender (unless it is the null sender).
  virtual ActionResult remove_message(std::string_view message_id, bool with_dsn) = 0;
  // Reloads the connector file; a bad file is kFailed and the old table stays.
  virtual ActionResult reload() = 0;

  // Called before /metrics renders, so gauges computed on demand (queue sizes) can be refreshed.
  virtual void refresh_metrics() {}
};

}  // namespace ringmail::admin
