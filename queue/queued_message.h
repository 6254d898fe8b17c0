// A message waiting for delivery, as the schedulers share it: envelope, spool location and the
// state of every recipient. Recipients of one message may belong to next hops owned by different
// workers; each recipient's state is written only by the worker that owns its next hop, and the
// count of non-final recipients is atomic so the last worker to finish one releases the message.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "queue/envelope.h"

namespace ringmail::queue {

struct QueuedMessage {
  StoredEnvelope env;                  // sender, recipients, flags, arrival
  MessageLocation location;            // where its record lives in the spool
  std::vector<RecipientState> rcpts;   // per recipient; element i written only by its next hop's owner
  std::atomic<uint32_t> pending{0};    // recipients not final; 0 → release the spool record
  std::atomic<bool> suspended{false};  // held by an operator: its work is parked, not sent
  std::atomic<bool> removed{false};    // removed by an operator: work that comes back is dropped

  // Counts recipient `i` as final; true when it was the last one (the caller releases the message).
  bool finish_recipient() { return pending.fetch_sub(1, std::memory_order_acq_rel) == 1; }
};

using MessageRef = std::shared_ptr<QueuedMessage>;

}  // namespace ringmail::queue
