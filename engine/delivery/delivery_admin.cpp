// The admin plane's operations on this worker's queues (engine/daemon/queue_admin posts them):
// queue and message views, retry now, suspend/resume, remove. Counting never dereferences the
// queued messages, so a summary of a million queued recipients stays fast. Part of Delivery.
#include "engine/delivery/delivery.h"

#include <algorithm>

#include "common/log.h"

namespace ringmail::engine {

using namespace std::chrono;

template <typename Fn>
void Delivery::for_each_work(const NextHop& hop, Fn fn) const {
  for (const auto& q : hop.waiting) fn(q.msg, q.rcpts);
  for (const auto* w : hop.ready) fn(w->msg, w->rcpts);
  for (const auto& q : hop.parked) fn(q.msg, q.rcpts);
  for (const auto& d : deferred_)
    if (d.hop == &hop) fn(d.work.msg, d.work.rcpts);
}

NextHop* Delivery::hop_by_id(const std::string& queue_id) const {
  for (const auto& [key, hop] : hops_)
    if (hop->id() == queue_id) return hop.get();
  return nullptr;
}

// Counts without touching the messages (a million queued recipients must list in well under
// 100 ms): work items and their recipient counts; deferred items in one pass over the heap.
// "messages" counts work items, which is the number of messages except when one message's
// recipients for one destination were split (recipient cap, partial deferral).
std::vector<QueueView> Delivery::queue_views() const {
  struct Count {
    size_t items = 0, rcpts = 0;
  };
  std::unordered_map<const NextHop*, Count> deferred;
  for (const auto& d : deferred_) {
    auto& c = deferred[d.hop];
    ++c.items;
    c.rcpts += d.work.rcpts.size();
  }
  std::vector<QueueView> out;
  out.reserve(hops_.size());
  auto now = loop_.now();
  auto wall_now = std::chrono::system_clock::now();
  for (const auto& [key, hop] : hops_) {
    QueueView v;
    v.id = hop->id();
    v.connector = hop->connector->name;
    v.destination = hop->destination;
    if (hop->suspended) v.state = "Suspended";
    else if (hop->health.in_retry(now)) v.state = "Retry";
    else if (hop->sessions > 0) v.state = "Active";
    else v.state = "Ready";
    Count c;
    if (auto it = deferred.find(hop.get()); it != deferred.end()) c = it->second;
    for (const auto* q : {&hop->waiting, &hop->parked}) {
      c.items += q->size();
      for (const auto& w : *q) c.rcpts += w.rcpts.size();
    }
    c.items += hop->ready.size();
    for (const auto* w : hop->ready) c.rcpts += w->rcpts.size();
    v.messages = c.items;
    v.recipients = c.rcpts;
    if (c.items > 0) v.oldest = hop->oldest;
    else hop->oldest = WallTime::max();  // empty: start over
    v.last_error = hop->last_error.empty() ? hop->no_hosts_reason : hop->last_error;
    if (hop->health.in_retry(now))
      v.next_retry = wall_now + duration_cast<milliseconds>(hop->health.retry_at() - now);
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<queue::MessageRef> Delivery::messages_in(const std::string& queue_id) const {
  std::vector<queue::MessageRef> out;
  NextHop* hop = hop_by_id(queue_id);
  if (!hop) return out;
  for_each_work(*hop, [&](const queue::MessageRef& msg, const auto&) {
    if (std::none_of(out.begin(), out.end(), [&](const auto& m) { return m.get() == msg.get(); })) out.push_back(msg);
  });
  return out;
}

void Delivery::find_message(queue::QueueId id, MessageView* into) const {
  for (const auto& [key, hop] : hops_) {
    bool here = false;
    for_each_work(*hop, [&](const queue::MessageRef& msg, const auto&) {
      if (msg->env.id != id) return;
      here = true;
      if (!into->msg) into->msg = msg;
    });
    if (here) into->queues.push_back(hop->id());
  }
  if (into->msg) into->suspended = into->msg->suspended.load(std::memory_order_relaxed);
}

bool Delivery::suspend_queue(const std::string& queue_id, bool suspend) {
  NextHop* hop = hop_by_id(queue_id);
  if (!hop) return false;
  hop->suspended = suspend;
  log::info("queue {} {} by the administrator", queue_id, suspend ? "suspended" : "resumed");
  if (!suspend) pump(*hop);
  return true;
}

// Moves the deferred entries matching `pred` to their queues' waiting lists; returns how many.
template <typename Pred>
static size_t release_deferred(std::vector<DeferredWork>& heap, Pred pred, std::vector<NextHop*>* touched) {
  size_t n = 0;
  for (auto it = heap.begin(); it != heap.end();) {
    if (pred(*it)) {
      it->hop->waiting.push_back(std::move(it->work));
      touched->push_back(it->hop);
      it = heap.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  if (n > 0) std::make_heap(heap.begin(), heap.end(), DeferredWork::later);
  return n;
}

bool Delivery::retry_queue(const std::string& queue_id) {
  NextHop* hop = hop_by_id(queue_id);
  if (!hop) return false;
  hop->health.retry_now();
  std::vector<NextHop*> touched;
  size_t n = release_deferred(deferred_, [&](const DeferredWork& d) { return d.hop == hop; }, &touched);
  log::info("queue {}: retry now (administrator; {} deferred item(s))", queue_id, n);
  pump(*hop);
  return true;
}

namespace {

// Moves the items of message `id` from `from` to the back of `to` (order kept), marking the
// message suspended or not; returns how many moved.
size_t move_message_items(std::deque<QueuedWork>& from, std::deque<QueuedWork>& to, queue::QueueId id,
                          bool suspended) {
  size_t n = 0;
  std::deque<QueuedWork> keep;
  for (auto& q : from) {
    if (q.msg->env.id == id) {
      q.msg->suspended.store(suspended, std::memory_order_relaxed);
      to.push_back(std::move(q));
      ++n;
    } else {
      keep.push_back(std::move(q));
    }
  }
  from.swap(keep);
  return n;
}

}  // namespace

size_t Delivery::suspend_message(queue::QueueId id, bool suspend) {
  size_t n = 0;
  for (auto& [key, hop] : hops_) {
    if (suspend) {
      n += move_message_items(hop->waiting, hop->parked, id, true);
      for (auto it = hop->ready.begin(); it != hop->ready.end();) {
        if ((*it)->msg->env.id == id) {
          (*it)->msg->suspended.store(true, std::memory_order_relaxed);
          park(*hop, *it);
          it = hop->ready.erase(it);
          ++n;
        } else {
          ++it;
        }
      }
    } else {
      n += move_message_items(hop->parked, hop->waiting, id, false);
      pump(*hop);
    }
  }
  for (auto& d : deferred_)  // waits for its retry time; parked when it comes due if still suspended
    if (d.work.msg->env.id == id) {
      d.work.msg->suspended.store(suspend, std::memory_order_relaxed);
      ++n;
    }
  return n;
}

size_t Delivery::retry_message(queue::QueueId id) {
  std::vector<NextHop*> touched;
  size_t n = release_deferred(deferred_, [&](const DeferredWork& d) { return d.work.msg->env.id == id; }, &touched);
  for (NextHop* hop : touched) pump(*hop);
  return n;
}

routing::dns::CacheStats Delivery::dns_stats() const {
  return resolver_ ? resolver_->mx().answer_stats() : routing::dns::CacheStats{};
}

void Delivery::recipient_views(queue::QueueId id, std::vector<RecipientView>* out) const {
  for (const auto& [key, hop] : hops_) {
    for_each_work(*hop, [&](const queue::MessageRef& msg, const auto& rcpts) {
      if (msg->env.id != id) return;
      for (uint32_t r : rcpts) {
        const auto& rs = msg->rcpts[r];
        out->push_back({r, hop->id(), rs.state, rs.attempts, rs.next_attempt, hop->last_error,
                        hop->suspended || msg->suspended.load(std::memory_order_relaxed)});
      }
    });
  }
}

void Delivery::fail_recipients(const queue::MessageRef& msg, const std::vector<uint32_t>& rcpts, bool with_dsn) {
  msg->removed.store(true, std::memory_order_release);
  std::vector<DeliveryWork::Bounce> bounced;
  for (uint32_t r : rcpts) {
    finish(msg, r, queue::RcptState::kFailed);
    bounced.push_back({r, "5.0.0", "x-ringmail; removed from the queue by the administrator"});
  }
  log::info("{}: {} recipient(s) removed from the Unreachable queue by the administrator{}",
            queue::format_queue_id(msg->env.id), rcpts.size(), with_dsn ? " (with DSN)" : "");
  if (tracking_) {
    std::vector<std::string_view> to;
    for (uint32_t r : rcpts) to.push_back(msg->env.rcpts[r]);
    tracking_->remove(msg->env.id, to, "unreachable", with_dsn);
  }
  if (with_dsn) send_dsn(*msg, queue::dsn::ReportKind::kFailure, bounced, {}, {});
}

size_t Delivery::remove_message(queue::QueueId id, bool with_dsn) {
  struct Found {
    NextHop* hop;
    QueuedWork work;
    std::string body;  // when it was loaded
  };
  std::vector<Found> found;
  for (auto& [key, hop] : hops_) {
    for (auto* q : {&hop->waiting, &hop->parked}) {
      std::deque<QueuedWork> keep;
      for (auto& w : *q) {
        if (w.msg->env.id == id) found.push_back({hop.get(), std::move(w), {}});
        else keep.push_back(std::move(w));
      }
      q->swap(keep);
    }
    for (auto it = hop->ready.begin(); it != hop->ready.end();) {
      if ((*it)->msg->env.id == id) {
        found.push_back({hop.get(), {std::move((*it)->msg), IndexList((*it)->rcpts)}, std::move((*it)->body)});
        delete *it;
        it = hop->ready.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto it = deferred_.begin(); it != deferred_.end();) {
    if (it->work.msg->env.id == id) {
      found.push_back({it->hop, std::move(it->work), {}});
      it = deferred_.erase(it);
    } else {
      ++it;
    }
  }
  if (!found.empty()) std::make_heap(deferred_.begin(), deferred_.end(), DeferredWork::later);
  size_t n = 0;
  for (auto& f : found) {
    f.work.msg->removed.store(true, std::memory_order_release);  // work in flight is dropped when it returns
    std::vector<DeliveryWork::Bounce> bounced;
    for (uint32_t r : f.work.rcpts) {
      finish(f.work.msg, r, queue::RcptState::kFailed);
      bounced.push_back({r, "5.0.0", "x-ringmail; removed from the queue by the administrator"});
      ++n;
    }
    log::info("{}: {} recipient(s) removed from queue {} by the administrator{}", queue::format_queue_id(id),
              f.work.rcpts.size(), f.hop->id(), with_dsn ? " (with DSN)" : "");
    if (tracking_) {
      std::vector<std::string_view> to;
      for (uint32_t r : f.work.rcpts) to.push_back(f.work.msg->env.rcpts[r]);
      tracking_->remove(id, to, f.hop->id(), with_dsn);
    }
    if (with_dsn) send_dsn(*f.work.msg, queue::dsn::ReportKind::kFailure, bounced, {}, f.body);
  }
  return n;
}

}  // namespace ringmail::engine
