// The admin HTTP server over cpp-httplib (see admin_server.h). This is the only file that includes
// httplib.h. Requests run on a pool of two httplib threads; calls into the backend are serialised
// by one mutex so the daemon's implementation sees one admin request at a time. ?format=table asks
// for the human tables of admin_render instead of JSON.
#include "engine/admin/admin_server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <sys/socket.h>
#include <thread>

#include "common/log.h"
#include "common/net.h"
#include "engine/admin/admin_render.h"

namespace ringmail::admin {
namespace {

static_assert(metrics::kQueueStates == kQueueStateCount, "queue state labels follow admin::QueueState");

constexpr const char* kJson = "application/json";
constexpr const char* kText = "text/plain; charset=utf-8";

int http_status(ActionStatus s) {
  switch (s) {
    case ActionStatus::kOk: return 200;
    case ActionStatus::kNotFound: return 404;
    case ActionStatus::kRejected: return 409;
    case ActionStatus::kFailed: return 500;
  }
  return 500;
}

// "localhost:N" is accepted as a spelling of 127.0.0.1:N; anything else must be an IP literal.
Result<SocketAddress> parse_listen(std::string_view listen) {
  std::string text(listen);
  if (text.starts_with("localhost:")) text = "127.0.0.1:" + text.substr(10);
  Result<SocketAddress> a = SocketAddress::parse(text);
  if (!a) return make_error("admin listen address \"{}\": {}", listen, a.error().message());
  return a;
}

bool wants_table(const httplib::Request& req) { return req.get_param_value("format") == "table"; }

}  // namespace

Result<bool> is_loopback_listen(std::string_view listen) {
  Result<SocketAddress> a = parse_listen(listen);
  if (!a) return a.error();
  static const NetworkList loopback = *NetworkList::parse("127.0.0.0/8 ::1/128");
  return loopback.contains(*a);
}

struct AdminServer::Impl {
  AdminBackend& backend;            // the daemon's view of its queues
  const Clock& clock;               // for ages and "next retry in"
  metrics::Registry* metrics;       // /metrics; may be null
  std::mutex backend_mutex;         // one backend call at a time
  httplib::Server http;             // routes below
  std::thread thread;               // runs http.listen_after_bind()
  SocketAddress bound;              // the address actually bound
  bool stopped = false;             // stop() ran
  std::atomic<bool> listen_ended{false};  // listen_after_bind() returned (error or stop)

  Impl(AdminBackend& b, const Clock& c, metrics::Registry* m) : backend(b), clock(c), metrics(m) {}

  void reply_action(httplib::Response& res, const httplib::Request& req, const ActionResult& r) {
    res.status = http_status(r.status);
    if (wants_table(req)) res.set_content(r.message + "\n", kText);
    else res.set_content(action_json(r), kJson);
  }

  void reply_error(httplib::Response& res, const httplib::Request& req, int status, const std::string& message) {
    res.status = status;
    if (wants_table(req)) res.set_content(message + "\n", kText);
    else res.set_content(error_json(message), kJson);
  }

  void routes() {
    http.Get("/queues", [this](const httplib::Request& req, httplib::Response& res) {
      std::vector<QueueInfo> queues;
      {
        std::lock_guard lock(backend_mutex);
        queues = backend.list_queues();
      }
      // Biggest queues first, as operators read them; ties by id so the order is stable.
      std::stable_sort(queues.begin(), queues.end(), [](const QueueInfo& a, const QueueInfo& b) {
        return a.recipients != b.recipients ? a.recipients > b.recipients : a.id < b.id;
      });
      WallTime now = clock.wall();
      if (wants_table(req)) res.set_content(queues_table(queues, now), kText);
      else res.set_content(queues_json(queues, now), kJson);
    });

    http.Get(R"(/queues/(.+)/messages)", [this](const httplib::Request& req, httplib::Response& res) {
      std::string id = req.matches[1];
      size_t limit = kDefaultMessageLimit;
      if (req.has_param("limit")) {
        std::string text = req.get_param_value("limit");
        char* end = nullptr;
        errno = 0;
        unsigned long long v = std::strtoull(text.c_str(), &end, 10);
        if (text.empty() || text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v == 0)
          return reply_error(res, req, 400, "limit must be a positive integer");
        limit = static_cast<size_t>(std::min<unsigned long long>(v, 1'000'000));
      }
      std::optional<MessageList> list;
      {
        std::lock_guard lock(backend_mutex);
        list = backend.list_messages(id, limit);
      }
      if (!list) return reply_error(res, req, 404, "no queue " + id);
      WallTime now = clock.wall();
      if (wants_table(req)) res.set_content(messages_table(id, *list, now), kText);
      else res.set_content(messages_json(id, *list, now), kJson);
    });

    http.Get(R"(/messages/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::string id = req.matches[1];
      std::optional<MessageInfo> m;
      {
        std::lock_guard lock(backend_mutex);
        m = backend.find_message(id);
      }
      if (!m) return reply_error(res, req, 404, "no message " + id);
      WallTime now = clock.wall();
      if (wants_table(req)) res.set_content(message_text(*m, now), kText);
      else res.set_content(message_json(*m, now), kJson);
    });

    http.Post(R"(/queues/(.+)/(retry|suspend|resume))", [this](const httplib::Request& req, httplib::Response& res) {
      std::string id = req.matches[1];
      std::string verb = req.matches[2];
      ActionResult r;
      {
        std::lock_guard lock(backend_mutex);
        if (verb == "retry") r = backend.retry_queue(id);
        else if (verb == "suspend") r = backend.suspend_queue(id);
        else r = backend.resume_queue(id);
      }
      log::info("admin: {} queue {}: {}", verb, id, r.message);
      reply_action(res, req, r);
    });

    http.Post(R"(/messages/([^/]+)/(retry|suspend|resume))",
              [this](const httplib::Request& req, httplib::Response& res) {
                std::string id = req.matches[1];
                std::string verb = req.matches[2];
                ActionResult r;
                {
                  std::lock_guard lock(backend_mutex);
                  if (verb == "retry") r = backend.retry_message(id);
                  else if (verb == "suspend") r = backend.suspend_message(id);
                  else r = backend.resume_message(id);
                }
                log::info("admin: {} message {}: {}", verb, id, r.message);
                reply_action(res, req, r);
              });

    http.Delete(R"(/messages/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::string id = req.matches[1];
      std::string dsn = req.has_param("dsn") ? req.get_param_value("dsn") : "1";
      if (dsn != "0" && dsn != "1") return reply_error(res, req, 400, "dsn must be 0 or 1");
      ActionResult r;
      {
        std::lock_guard lock(backend_mutex);
        r = backend.remove_message(id, dsn == "1");
      }
      log::info("admin: remove message {} (dsn={}): {}", id, dsn, r.message);
      reply_action(res, req, r);
    });

    http.Post("/reload", [this](const httplib::Request& req, httplib::Response& res) {
      ActionResult r;
      {
        std::lock_guard lock(backend_mutex);
        r = backend.reload();
      }
      log::info("admin: reload: {}", r.message);
      reply_action(res, req, r);
    });

    http.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      if (metrics == nullptr) return reply_error(res, req, 404, "metrics are not enabled");
      {
        std::lock_guard lock(backend_mutex);
        backend.refresh_metrics();
      }
      res.set_content(metrics->render(), std::string(metrics::Registry::kContentType).c_str());
    });

    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler already explained the error
      std::string message = res.status == 404 ? "no such endpoint: " + req.method + " " + req.path
                                              : "HTTP error " + std::to_string(res.status);
      if (req.get_param_value("format") == "table") res.set_content(message + "\n", kText);
      else res.set_content(error_json(message), kJson);
    });
  }
};

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() { stop(); }

Result<std::unique_ptr<AdminServer>> AdminServer::start(AdminBackend& backend, const AdminServerOptions& options) {
  Result<SocketAddress> addr = parse_listen(options.listen);
  if (!addr) return addr.error();
  Result<bool> loopback = is_loopback_listen(options.listen);
  if (!*loopback && !options.allow_non_loopback)
    return make_error("admin listen address {} is not loopback; the admin plane can remove mail, so "
                      "listening elsewhere must be allowed explicitly",
                      addr->to_string());

  const Clock& clock = options.clock ? *options.clock : SystemClock::instance();
  auto impl = std::make_unique<Impl>(backend, clock, options.metrics);
  // Two request threads: one slow or idle keep-alive client cannot block every operator.
  impl->http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  impl->http.set_read_timeout(5, 0);
  impl->http.set_write_timeout(5, 0);
  impl->http.set_payload_max_length(64 * 1024);  // requests carry no bodies
  // httplib's default also sets SO_REUSEPORT, which would let a second daemon bind the same
  // admin port and silently take half the requests. Address reuse alone is what we want.
  impl->http.set_socket_options([](int fd) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  impl->routes();

  std::string host = addr->host();
  int port = addr->port();
  errno = 0;
  if (port == 0) {
    port = impl->http.bind_to_any_port(host);
    if (port < 0) return make_error("admin: cannot listen on {}: {}", addr->to_string(), std::strerror(errno));
  } else if (!impl->http.bind_to_port(host, port)) {
    return make_error("admin: cannot listen on {}: {}", addr->to_string(), std::strerror(errno));
  }
  impl->bound = *addr;
  impl->bound.set_port(static_cast<uint16_t>(port));
  // The socket already listens: connections queue in the backlog until this thread accepts them.
  impl->thread = std::thread([server = &impl->http, ended = &impl->listen_ended] {
    log::set_thread_name("admin");
    server->listen_after_bind();
    ended->store(true);
  });
  // httplib's stop() does nothing until listen_after_bind() has marked the server running, so a
  // stop right after start would leave the thread blocked in accept(). Wait for it (start-up only).
  while (!impl->http.is_running() && !impl->listen_ended.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (impl->listen_ended.load() && !impl->http.is_running()) {
    impl->thread.join();
    return make_error("admin: the HTTP server on {} stopped as soon as it started", impl->bound.to_string());
  }
  log::info("admin: listening on http://{}", impl->bound.to_string());
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

uint16_t AdminServer::port() const { return impl_->bound.port(); }

std::string AdminServer::address() const { return impl_->bound.to_string(); }

void AdminServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace ringmail::admin
