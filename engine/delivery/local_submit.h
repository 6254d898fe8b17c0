// Messages ringmail writes itself (DSNs): committed through the worker's spool writer like any
// received message, then handed to delivery once durable. A message that cannot be committed is
// logged and dropped (the original's state is already journaled; nothing else depends on it).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "queue/queued_message.h"
#include "queue/spool_writer.h"

namespace ringmail::engine {

class LocalSubmitter {  // one per worker; its thread only
 public:
  using Committed = std::function<void(queue::MessageRef)>;
  LocalSubmitter(queue::SpoolWriter& writer, Committed on_committed)
      : writer_(writer), on_committed_(std::move(on_committed)) {}
  ~LocalSubmitter();
  LocalSubmitter(const LocalSubmitter&) = delete;
  LocalSubmitter& operator=(const LocalSubmitter&) = delete;

  // Assigns a queue id and appends; on_committed runs once the record is durable.
  void submit(queue::StoredEnvelope env, std::string body);
  size_t in_flight() const { return pending_.size(); }

 private:
  struct Pending final : queue::CommitCallback {
    LocalSubmitter* owner = nullptr;     // back pointer
    queue::MessageRef msg;               // envelope; location filled at append
    void committed(queue::QueueId id, Status status) override { owner->on_commit(this, id, status); }
  };
  void on_commit(Pending* p, queue::QueueId id, const Status& status);

  queue::SpoolWriter& writer_;
  Committed on_committed_;
  std::unordered_set<Pending*> pending_;  // appended, not yet committed
};

}  // namespace ringmail::engine
