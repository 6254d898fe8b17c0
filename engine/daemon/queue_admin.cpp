// QueueAdmin (see queue_admin.h).
#include "engine/daemon/queue_admin.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <memory>

#include "common/log.h"
#include "queue/queue_id.h"

namespace ringmail::engine {
namespace {

using namespace std::chrono;
constexpr auto kWorkerAnswerTimeout = seconds(10);

admin::QueueState state_of(const std::string& s) {
  if (s == "Active") return admin::QueueState::kActive;
  if (s == "Retry") return admin::QueueState::kRetry;
  if (s == "Suspended") return admin::QueueState::kSuspended;
  return admin::QueueState::kReady;
}

admin::ActionResult not_found(std::string_view what, std::string_view id) {
  return {admin::ActionStatus::kNotFound, fmt::format("no {} '{}'", what, id)};
}

}  // namespace

template <typename T>
std::vector<T> QueueAdmin::on_workers(std::function<T(Delivery&)> fn) {
  struct State {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::optional<T>> results;
    size_t done = 0;
  };
  auto st = std::make_shared<State>();
  st->results.resize(shared_.workers.size());
  for (size_t i = 0; i < shared_.workers.size(); ++i) {
    Delivery* d = shared_.workers[i];
    d->loop().post([st, d, i, fn] {
      T r = fn(*d);
      std::lock_guard<std::mutex> g(st->m);
      st->results[i] = std::move(r);
      ++st->done;
      st->cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lk(st->m);
  if (!st->cv.wait_for(lk, kWorkerAnswerTimeout, [&] { return st->done == st->results.size(); }))
    log::warn("admin: {} of {} workers did not answer within {} s", st->results.size() - st->done,
              st->results.size(), kWorkerAnswerTimeout.count());
  std::vector<T> out;
  for (auto& r : st->results)
    if (r) out.push_back(std::move(*r));
  return out;
}

std::vector<admin::QueueInfo> QueueAdmin::list_queues() {
  auto per_worker = on_workers<std::vector<QueueView>>([](Delivery& d) { return d.queue_views(); });
  auto now = system_clock::now();
  std::vector<admin::QueueInfo> out;
  for (auto& views : per_worker) {
    for (auto& v : views) {
      admin::QueueInfo q;
      q.id = v.id;
      q.next_hop = v.destination;
      q.connector = v.connector;
      q.state = state_of(v.state);
      q.messages = v.messages;
      q.recipients = v.recipients;
      if (v.messages > 0) q.oldest_age = duration_cast<seconds>(now - v.oldest);
      q.last_error = v.last_error;
      q.next_retry = v.next_retry;
      out.push_back(std::move(q));
    }
  }
  {
    std::lock_guard<std::mutex> g(shared_.unreachable_mutex);
    if (!shared_.unreachable_queue.empty()) {
      admin::QueueInfo q;
      q.id = std::string(kUnreachableId);
      q.next_hop = "(no connector)";
      q.state = admin::QueueState::kUnreachable;
      WallTime oldest = WallTime::max();
      for (const auto& e : shared_.unreachable_queue) {
        ++q.messages;
        q.recipients += e.rcpts.size();
        oldest = std::min(oldest, e.msg->env.arrival);
        q.last_error = e.reason;
      }
      q.oldest_age = duration_cast<seconds>(now - oldest);
      out.push_back(std::move(q));
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

admin::MessageInfo QueueAdmin::describe(const queue::MessageRef& msg, const std::vector<RecipientView>& held) {
  admin::MessageInfo m;
  m.id = queue::format_queue_id(msg->env.id);
  m.sender = msg->env.mail_from;
  m.size = msg->location.body_len;
  m.arrival = msg->env.arrival;
  m.suspended = msg->suspended.load(std::memory_order_relaxed);
  m.recipients.resize(msg->env.rcpts.size());
  for (size_t i = 0; i < msg->env.rcpts.size(); ++i) {
    m.recipients[i].address = msg->env.rcpts[i];
    // Not held by any queue: final (delivered or failed), or in a session right now.
    m.recipients[i].state = admin::RecipientState::kDelivered;
  }
  std::vector<bool> seen(msg->env.rcpts.size());
  for (const auto& h : held) {
    if (h.rcpt >= m.recipients.size()) continue;
    auto& r = m.recipients[h.rcpt];
    seen[h.rcpt] = true;
    r.queue = h.queue;
    r.attempts = h.attempts;
    r.last_error = h.last_error;
    if (h.suspended) r.state = admin::RecipientState::kSuspended;
    else if (h.state == queue::RcptState::kDeferred) r.state = admin::RecipientState::kDeferred;
    else r.state = admin::RecipientState::kPending;
    if (h.state == queue::RcptState::kDeferred) r.next_retry = h.next_attempt;
  }
  {
    std::lock_guard<std::mutex> g(shared_.unreachable_mutex);
    for (const auto& e : shared_.unreachable_queue)
      if (e.msg == msg)
        for (uint32_t i : e.rcpts) {
          m.recipients[i].state = admin::RecipientState::kPending;
          m.recipients[i].queue = std::string(kUnreachableId);
          m.recipients[i].last_error = e.reason;
          seen[i] = true;
        }
  }
  // The rest are final; the state was written by the owner before it let go of the recipient.
  for (size_t i = 0; i < seen.size(); ++i)
    if (!seen[i] && msg->rcpts[i].state == queue::RcptState::kFailed) m.recipients[i].state = admin::RecipientState::kFailed;
  return m;
}

std::optional<admin::MessageList> QueueAdmin::list_messages(std::string_view queue_id, size_t limit) {
  std::vector<queue::MessageRef> msgs;
  if (queue_id == kUnreachableId) {
    std::lock_guard<std::mutex> g(shared_.unreachable_mutex);
    for (const auto& e : shared_.unreachable_queue) msgs.push_back(e.msg);
    if (msgs.empty()) return std::nullopt;
  } else {
    std::string id(queue_id);
    auto per_worker = on_workers<std::pair<bool, std::vector<queue::MessageRef>>>([id](Delivery& d) {
      auto views = d.queue_views();
      bool exists = std::any_of(views.begin(), views.end(), [&](const QueueView& v) { return v.id == id; });
      return std::make_pair(exists, d.messages_in(id));
    });
    bool exists = false;
    for (auto& [e, list] : per_worker) {
      exists = exists || e;
      msgs.insert(msgs.end(), list.begin(), list.end());
    }
    if (!exists) return std::nullopt;
  }
  std::sort(msgs.begin(), msgs.end(), [](const auto& a, const auto& b) { return a->env.arrival < b->env.arrival; });
  admin::MessageList out;
  out.total = msgs.size();
  if (msgs.size() > limit) msgs.resize(limit);
  for (const auto& msg : msgs) {
    queue::QueueId qid = msg->env.id;
    auto held = on_workers<std::vector<RecipientView>>([qid](Delivery& d) {
      std::vector<RecipientView> v;
      d.recipient_views(qid, &v);
      return v;
    });
    std::vector<RecipientView> all;
    for (auto& h : held) all.insert(all.end(), h.begin(), h.end());
    out.messages.push_back(describe(msg, all));
  }
  return out;
}

std::optional<admin::MessageInfo> QueueAdmin::find_message(std::string_view message_id) {
  auto id = queue::parse_queue_id(message_id);
  if (!id) return std::nullopt;
  queue::QueueId qid = *id;
  struct Found {
    queue::MessageRef msg;
    std::vector<RecipientView> held;
  };
  auto per_worker = on_workers<Found>([qid](Delivery& d) {
    Found f;
    MessageView v;
    d.find_message(qid, &v);
    f.msg = v.msg;
    d.recipient_views(qid, &f.held);
    return f;
  });
  queue::MessageRef msg;
  std::vector<RecipientView> all;
  for (auto& f : per_worker) {
    if (f.msg) msg = f.msg;
    all.insert(all.end(), f.held.begin(), f.held.end());
  }
  if (!msg) {
    std::lock_guard<std::mutex> g(shared_.unreachable_mutex);
    for (const auto& e : shared_.unreachable_queue)
      if (e.msg->env.id == qid) msg = e.msg;
  }
  if (!msg) return std::nullopt;
  return describe(msg, all);
}

admin::ActionResult QueueAdmin::retry_queue(std::string_view queue_id) {
  if (queue_id == kUnreachableId) return reload();
  std::string id(queue_id);
  auto r = on_workers<bool>([id](Delivery& d) { return d.retry_queue(id); });
  if (std::none_of(r.begin(), r.end(), [](bool b) { return b; })) return not_found("queue", queue_id);
  return {admin::ActionStatus::kOk, fmt::format("queue {}: retrying now", queue_id)};
}

admin::ActionResult QueueAdmin::suspend_queue(std::string_view queue_id) {
  if (queue_id == kUnreachableId) return {admin::ActionStatus::kRejected, "the Unreachable queue cannot be suspended"};
  std::string id(queue_id);
  auto r = on_workers<bool>([id](Delivery& d) { return d.suspend_queue(id, true); });
  if (std::none_of(r.begin(), r.end(), [](bool b) { return b; })) return not_found("queue", queue_id);
  return {admin::ActionStatus::kOk, fmt::format("queue {} suspended", queue_id)};
}

admin::ActionResult QueueAdmin::resume_queue(std::string_view queue_id) {
  if (queue_id == kUnreachableId) return {admin::ActionStatus::kRejected, "the Unreachable queue is never suspended"};
  std::string id(queue_id);
  auto r = on_workers<bool>([id](Delivery& d) { return d.suspend_queue(id, false); });
  if (std::none_of(r.begin(), r.end(), [](bool b) { return b; })) return not_found("queue", queue_id);
  return {admin::ActionStatus::kOk, fmt::format("queue {} resumed", queue_id)};
}

admin::ActionResult QueueAdmin::retry_message(std::string_view message_id) {
  auto id = queue::parse_queue_id(message_id);
  if (!id || !find_message(message_id)) return not_found("message", message_id);
  queue::QueueId qid = *id;
  auto r = on_workers<size_t>([qid](Delivery& d) { return d.retry_message(qid); });
  size_t n = 0;
  for (size_t x : r) n += x;
  return {admin::ActionStatus::kOk, fmt::format("message {}: {} deferred item(s) retried now", message_id, n)};
}

admin::ActionResult QueueAdmin::suspend_message(std::string_view message_id) {
  auto id = queue::parse_queue_id(message_id);
  if (!id || !find_message(message_id)) return not_found("message", message_id);
  queue::QueueId qid = *id;
  on_workers<size_t>([qid](Delivery& d) { return d.suspend_message(qid, true); });
  return {admin::ActionStatus::kOk, fmt::format("message {} suspended", message_id)};
}

admin::ActionResult QueueAdmin::resume_message(std::string_view message_id) {
  auto id = queue::parse_queue_id(message_id);
  if (!id || !find_message(message_id)) return not_found("message", message_id);
  queue::QueueId qid = *id;
  on_workers<size_t>([qid](Delivery& d) { return d.suspend_message(qid, false); });
  return {admin::ActionStatus::kOk, fmt::format("message {} resumed", message_id)};
}

admin::ActionResult QueueAdmin::remove_message(std::string_view message_id, bool with_dsn) {
  auto id = queue::parse_queue_id(message_id);
  if (!id) return not_found("message", message_id);
  queue::QueueId qid = *id;
  auto r = on_workers<size_t>([qid, with_dsn](Delivery& d) { return d.remove_message(qid, with_dsn); });
  size_t n = 0;
  for (size_t x : r) n += x;
  // Recipients in the Unreachable queue: failed by worker 0 (it owns a journal).
  std::vector<UnreachableEntry> taken;
  {
    std::lock_guard<std::mutex> g(shared_.unreachable_mutex);
    auto& q = shared_.unreachable_queue;
    for (auto it = q.begin(); it != q.end();) {
      if (it->msg->env.id == qid) {
        taken.push_back(std::move(*it));
        it = q.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& e : taken) {
    if (shared_.workers.empty()) break;
    n += e.rcpts.size();
    shared_.unreachable.fetch_sub(e.rcpts.size(), std::memory_order_relaxed);
    Delivery* d = shared_.workers[0];
    d->loop().post([d, e, with_dsn] { d->fail_recipients(e.msg, e.rcpts, with_dsn); });
  }
  if (n == 0) return not_found("queued message", message_id);
  return {admin::ActionStatus::kOk, fmt::format("message {}: {} recipient(s) removed{}", message_id, n,
                                                with_dsn ? ", the sender gets a DSN" : ", no DSN")};
}

admin::ActionResult QueueAdmin::reload() {
  if (!hooks_.reload) return {admin::ActionStatus::kRejected, "no connector file (--config) to reload"};
  return hooks_.reload();
}

void QueueAdmin::refresh_metrics() {
  if (!metrics_) return;
  auto queues = list_queues();
  std::lock_guard<std::mutex> g(metrics_mutex_);
  int64_t rcpts[metrics::kQueueStates] = {}, count[metrics::kQueueStates] = {};
  for (const auto& q : queues) {
    auto s = static_cast<size_t>(q.state);
    rcpts[s] += static_cast<int64_t>(q.recipients);
    count[s] += 1;
  }
  for (size_t s = 0; s < metrics::kQueueStates; ++s) {
    metrics_->queue_recipients[s]->set(rcpts[s]);
    metrics_->queue_count[s]->set(count[s]);
  }
  auto sync = [](metrics::Counter& c, uint64_t now, uint64_t& seen) {
    if (now > seen) c.inc(now - seen);
    seen = std::max(seen, now);
  };
  if (hooks_.messages_received) sync(metrics_->received, hooks_.messages_received(), seen_received_);
  sync(metrics_->delivered, shared_.delivered.load(), seen_delivered_);
  sync(metrics_->deferred, shared_.deferred.load(), seen_deferred_);
  sync(metrics_->bounced, shared_.failed.load(), seen_failed_);
  sync(metrics_->expired, shared_.expired.load(), seen_expired_);
  sync(metrics_->dsn_sent, shared_.dsns.load(), seen_dsns_);
  metrics_->sessions_outbound.set(shared_.outbound.load(std::memory_order_relaxed));
  uint64_t hits = 0, misses = 0;
  for (const auto& s : on_workers<routing::dns::CacheStats>([](Delivery& d) { return d.dns_stats(); })) {
    hits += s.hits;
    misses += s.misses;
  }
  sync(metrics_->dns_cache_hits, hits, seen_dns_hits_);
  sync(metrics_->dns_cache_misses, misses, seen_dns_misses_);
  if (hooks_.inbound_sessions) metrics_->sessions_inbound.set(hooks_.inbound_sessions());
  if (hooks_.spool_bytes) metrics_->spool_bytes.set(hooks_.spool_bytes());
  sync(metrics_->tls_handshakes_out, shared_.tls_handshakes.load(), seen_tls_out_);
  sync(metrics_->tls_resumed_out, shared_.tls_resumed.load(), seen_tls_resumed_out_);
  if (hooks_.inbound_counts) {
    InboundCounts in = hooks_.inbound_counts();
    sync(metrics_->tls_handshakes_in, in.tls_handshakes, seen_in_.tls_handshakes);
    sync(metrics_->tls_resumed_in, in.tls_resumed, seen_in_.tls_resumed);
    sync(metrics_->tls_failures_in, in.tls_failures, seen_in_.tls_failures);
    sync(metrics_->auth_ok, in.auth_ok, seen_in_.auth_ok);
    sync(metrics_->auth_failed, in.auth_failed, seen_in_.auth_failed);
  }
}

}  // namespace ringmail::engine
