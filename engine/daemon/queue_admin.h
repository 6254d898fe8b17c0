// The daemon's side of the admin plane: AdminBackend over the workers' delivery. Every call runs
// on the admin thread; it posts a task to each worker's loop (queues and their counters belong to
// the worker that owns the next hop) and waits for the answers, so nothing in the data plane
// takes a lock for the admin's sake. Also keeps the Prometheus registry's derived series current.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "engine/admin/admin_backend.h"
#include "engine/delivery/delivery.h"

namespace ringmail::engine {

// Listener counters summed over the workers, for /metrics.
struct InboundCounts {
  uint64_t tls_handshakes = 0, tls_resumed = 0, tls_failures = 0, auth_ok = 0, auth_failed = 0;
};

struct QueueAdminHooks {
  std::function<admin::ActionResult()> reload;           // reload the connector file (as SIGHUP)
  std::function<uint64_t()> messages_received;           // 250s given so far (all workers)
  std::function<int64_t()> inbound_sessions;             // open inbound connections
  std::function<int64_t()> spool_bytes;                  // bytes in live spool segments
  std::function<InboundCounts()> inbound_counts;         // STARTTLS and AUTH counters of the listener
};

class QueueAdmin final : public admin::AdminBackend {
 public:
  QueueAdmin(DeliveryShared& shared, QueueAdminHooks hooks, metrics::RelayMetrics* metrics)
      : shared_(shared), hooks_(std::move(hooks)), metrics_(metrics) {}

  std::vector<admin::QueueInfo> list_queues() override;
  std::optional<admin::MessageList> list_messages(std::string_view queue_id, size_t limit) override;
  std::optional<admin::MessageInfo> find_message(std::string_view message_id) override;
  admin::ActionResult retry_queue(std::string_view queue_id) override;
  admin::ActionResult suspend_queue(std::string_view queue_id) override;
  admin::ActionResult resume_queue(std::string_view queue_id) override;
  admin::ActionResult retry_message(std::string_view message_id) override;
  admin::ActionResult suspend_message(std::string_view message_id) override;
  admin::ActionResult resume_message(std::string_view message_id) override;
  admin::ActionResult remove_message(std::string_view message_id, bool with_dsn) override;
  admin::ActionResult reload() override;
  void refresh_metrics() override;

  static constexpr std::string_view kUnreachableId = "unreachable";  // the Unreachable queue's id

 private:
  // Runs fn(delivery) on every worker's thread and returns the results in worker order.
  template <typename T>
  std::vector<T> on_workers(std::function<T(Delivery&)> fn);
  admin::MessageInfo describe(const queue::MessageRef& msg, const std::vector<RecipientView>& held);

  DeliveryShared& shared_;
  QueueAdminHooks hooks_;
  metrics::RelayMetrics* metrics_;  // null = no metrics
  std::mutex metrics_mutex_;        // refresh_metrics may race with itself across HTTP threads
  uint64_t seen_received_ = 0, seen_delivered_ = 0, seen_deferred_ = 0, seen_failed_ = 0, seen_expired_ = 0,
           seen_dsns_ = 0, seen_dns_hits_ = 0, seen_dns_misses_ = 0,  // counter values already added to the registry
           seen_tls_out_ = 0, seen_tls_resumed_out_ = 0;
  InboundCounts seen_in_;  // the same for the listener's counters
};

}  // namespace ringmail::engine
