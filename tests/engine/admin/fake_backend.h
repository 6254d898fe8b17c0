// A stateful in-memory AdminBackend for the admin server's tests and for fake_admin_server (the
// peer of the ringmail-queue CLI tests): a few queues and messages whose state the operator
// actions really change, and a record of every call.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "engine/admin/admin_backend.h"

namespace ringmail::admin::testing {

class FakeBackend final : public AdminBackend {
 public:
  explicit FakeBackend(WallTime now) : now_(now) {
    using std::chrono::seconds;
    add_queue({"smtp:example.com", "example.com", "internet", QueueState::kRetry, 0, 0, seconds(7200),
               "451 4.7.1 greylisted, try again later", now + seconds(300)});
    add_queue({"smtp:example.org", "example.org", "internet", QueueState::kActive, 0, 0, seconds(12), "", {}});
    add_queue({"unreachable", "nowhere.invalid", "", QueueState::kUnreachable, 0, 0, seconds(60),
               "no connector matches nowhere.invalid", {}});
    add_message("00000000000000A1", "alice@example.net", 2048, now - seconds(7200),
                {{"bob@example.com", "smtp:example.com", RecipientState::kDeferred, 3,
                  "451 4.7.1 greylisted, try again later", now + seconds(300)},
                 {"carol@example.org", "smtp:example.org", RecipientState::kDelivered, 1, "", {}}});
    add_message("00000000000000A2", "", 512, now - seconds(600),
                {{"dave@example.com", "smtp:example.com", RecipientState::kDeferred, 1, "connection refused",
                  now + seconds(240)}});
    add_message("00000000000000B1", "erin@example.net", 100, now - seconds(60),
                {{"x@nowhere.invalid", "unreachable", RecipientState::kPending, 0, "", {}}});
  }

  std::vector<QueueInfo> list_queues() override {
    calls.push_back("list_queues");
    std::vector<QueueInfo> out;
    for (auto& [id, q] : queues) out.push_back(with_counts(q));
    return out;
  }

  std::optional<MessageList> list_messages(std::string_view queue_id, size_t limit) override {
    calls.push_back("list_messages " + std::string(queue_id) + " " + std::to_string(limit));
    if (!queues.count(std::string(queue_id))) return std::nullopt;
    MessageList list;
    for (auto& [id, m] : messages) {
      if (!in_queue(m, queue_id)) continue;
      ++list.total;
      if (list.messages.size() < limit) list.messages.push_back(m);
    }
    return list;
  }

  std::optional<MessageInfo> find_message(std::string_view id) override {
    calls.push_back("find_message " + std::string(id));
    auto it = messages.find(std::string(id));
    if (it == messages.end()) return std::nullopt;
    return it->second;
  }

  ActionResult retry_queue(std::string_view id) override {
    calls.push_back("retry_queue " + std::string(id));
    QueueInfo* q = queue(id);
    if (!q) return {ActionStatus::kNotFound, "no queue " + std::string(id)};
    if (q->state == QueueState::kSuspended) return {ActionStatus::kRejected, "queue is suspended; resume it first"};
    q->state = QueueState::kReady;
    q->next_retry = {};
    return {ActionStatus::kOk, "queue " + q->id + " will be retried now"};
  }
  ActionResult suspend_queue(std::string_view id) override {
    calls.push_back("suspend_queue " + std::string(id));
    QueueInfo* q = queue(id);
    if (!q) return {ActionStatus::kNotFound, "no queue " + std::string(id)};
    q->state = QueueState::kSuspended;
    return {ActionStatus::kOk, "queue " + q->id + " suspended"};
  }
  ActionResult resume_queue(std::string_view id) override {
    calls.push_back("resume_queue " + std::string(id));
    QueueInfo* q = queue(id);
    if (!q) return {ActionStatus::kNotFound, "no queue " + std::string(id)};
    if (q->state == QueueState::kUnreachable) return {ActionStatus::kRejected, "unreachable queues wait for a reload"};
    q->state = QueueState::kReady;
    return {ActionStatus::kOk, "queue " + q->id + " resumed"};
  }
  ActionResult retry_message(std::string_view id) override { return message_action("retry_message", id, false); }
  ActionResult suspend_message(std::string_view id) override { return message_action("suspend_message", id, true); }
  ActionResult resume_message(std::string_view id) override { return message_action("resume_message", id, false); }

  ActionResult remove_message(std::string_view id, bool with_dsn) override {
    calls.push_back("remove_message " + std::string(id) + (with_dsn ? " dsn" : " no-dsn"));
    auto it = messages.find(std::string(id));
    if (it == messages.end()) return {ActionStatus::kNotFound, "no message " + std::string(id)};
    bool dsn = with_dsn && !it->second.sender.empty();
    messages.erase(it);
    return {ActionStatus::kOk, "message " + std::string(id) + " removed" + (dsn ? ", DSN sent" : ", no DSN")};
  }

  ActionResult reload() override {
    calls.push_back("reload");
    if (fail_reload) return {ActionStatus::kFailed, "connectors.toml: line 3: unknown key \"smarthost\""};
    ++reloads;
    return {ActionStatus::kOk, "reloaded: 2 connectors"};
  }

  void refresh_metrics() override { calls.push_back("refresh_metrics"); }

  std::map<std::string, QueueInfo> queues;      // by id
  std::map<std::string, MessageInfo> messages;  // by id
  std::vector<std::string> calls;               // every call, in order
  bool fail_reload = false;                     // reload() fails when set
  int reloads = 0;                              // successful reloads

 private:
  void add_queue(QueueInfo q) { queues[q.id] = q; }
  void add_message(std::string id, std::string sender, uint64_t size, WallTime arrival,
                   std::vector<RecipientInfo> rcpts) {
    messages[id] = MessageInfo{id, sender, size, arrival, false, std::move(rcpts)};
  }
  static bool in_queue(const MessageInfo& m, std::string_view queue_id) {
    return std::any_of(m.recipients.begin(), m.recipients.end(), [&](const RecipientInfo& r) {
      return r.queue == queue_id && r.state != RecipientState::kDelivered && r.state != RecipientState::kFailed;
    });
  }
  QueueInfo with_counts(QueueInfo q) const {
    for (auto& [id, m] : messages) {
      if (!in_queue(m, q.id)) continue;
      ++q.messages;
      for (const RecipientInfo& r : m.recipients) q.recipients += r.queue == q.id && r.state != RecipientState::kDelivered;
    }
    return q;
  }
  QueueInfo* queue(std::string_view id) {
    auto it = queues.find(std::string(id));
    return it == queues.end() ? nullptr : &it->second;
  }
  ActionResult message_action(const char* name, std::string_view id, bool suspend) {
    calls.push_back(std::string(name) + " " + std::string(id));
    auto it = messages.find(std::string(id));
    if (it == messages.end()) return {ActionStatus::kNotFound, "no message " + std::string(id)};
    it->second.suspended = suspend;
    for (RecipientInfo& r : it->second.recipients) {
      if (r.state == RecipientState::kDelivered || r.state == RecipientState::kFailed) continue;
      r.state = suspend ? RecipientState::kSuspended : RecipientState::kPending;
      if (!suspend) r.next_retry = {};
    }
    return {ActionStatus::kOk, std::string(name) + " " + std::string(id) + ": done"};
  }

  WallTime now_;  // the time the sample data is relative to
};

}  // namespace ringmail::admin::testing
