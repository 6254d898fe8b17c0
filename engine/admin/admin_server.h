// The admin control plane: an HTTP/1.1 server (Debian's cpp-httplib, compiled only in
// admin_server.cpp) on its own threads, serving the JSON endpoints of docs/admin.md over an
// AdminBackend and /metrics from a metrics::Registry. It listens on loopback unless the caller
// explicitly allows another address. The data plane never runs here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/result.h"
#include "engine/admin/admin_backend.h"

namespace ringmail::admin {

inline constexpr std::string_view kDefaultAdminListen = "127.0.0.1:8025";  // daemon and CLI default
inline constexpr size_t kDefaultMessageLimit = 1000;  // GET /queues/{id}/messages without ?limit=

struct AdminServerOptions {
  std::string listen{kDefaultAdminListen};  // "ip:port", "[v6]:port" or "localhost:port"; port 0 = any
  bool allow_non_loopback = false;          // must be set to listen on anything but loopback
  const Clock* clock = nullptr;             // for ages and "next retry in"; null = the system clock
  metrics::Registry* metrics = nullptr;     // served at /metrics; null = 404 there
};

class AdminServer {
 public:
  // Binds and starts serving on a thread of its own. Errors: a malformed or non-loopback address
  // (without allow_non_loopback), or an address that cannot be bound. `backend` and the metrics
  // registry must outlive the server.
  static Result<std::unique_ptr<AdminServer>> start(AdminBackend& backend, const AdminServerOptions& options);

  ~AdminServer();  // stops and joins
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  uint16_t port() const;        // the bound port (useful with port 0)
  std::string address() const;  // "127.0.0.1:8025" as bound
  void stop();                  // idempotent

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;  // httplib server, thread, backend
};

// Whether `listen` ("ip:port" or "localhost:port") names a loopback address; errors for malformed text.
Result<bool> is_loopback_listen(std::string_view listen);

}  // namespace ringmail::admin
