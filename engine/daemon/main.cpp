// The ringmail daemon: parses flags, opens (and recovers) the spool, binds the SO_REUSEPORT
// listeners, starts one worker per core, and turns signals into actions: SIGTERM/SIGINT →
// clean shutdown (stop accepting, finish sessions, sync the spool, exit 0), SIGHUP → reload.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <memory>
#include <vector>

#include <fmt/ranges.h>

#include "common/log.h"
#include "common/strings.h"
#include "common/text_io.h"
#include "engine/net/listener.h"
#include "engine/admin/admin_server.h"
#include "engine/daemon/options.h"
#include "engine/daemon/queue_admin.h"
#include "engine/loop/loop.h"
#include "engine/loop/process_setup.h"
#include "engine/server/worker.h"
#include "queue/spool.h"
#include "routing/publisher.h"

using namespace ringmail;

namespace {

int run(int argc, char** argv) {
  bool should_exit = false;
  int exit_code = 0;
  auto opts = engine::parse_daemon_options(argc, argv, &should_exit, &exit_code);
  if (should_exit) return exit_code;
  if (!opts) {
    log::error("{}", opts.error().message());
    return 2;
  }
  log::Level level;
  if (!log::parse_level(opts->log_level, &level)) {
    log::error("--log-level: expected debug, info, warn or error, got '{}'", opts->log_level);
    return 2;
  }
  log::set_level(level);

  // Signals are handled by this thread only (sigwait); workers inherit the blocked mask.
  sigset_t sigs;
  if (auto st = engine::prepare_process({SIGTERM, SIGINT, SIGHUP}, &sigs); !st) {
    log::error("{}", st.error().message());
    return 1;
  }

  // The connector file is validated before anything else starts: a broken file is an operator
  // error to fix now, reported with every FILE:LINE reason, not a daemon that half-works.
  routing::NodeIdentity node{opts->node_name, opts->node_addresses};
  std::unique_ptr<routing::TablePublisher> routes;
  // What a connector file needs from the daemon's flags, at start-up and on every reload.
  auto check_against_flags = [&](const routing::Config& c) -> Status {
    if (!opts->protocol_log_dir.empty()) return {};
    for (const auto& conn : c.connectors)
      if (conn.protocol_log)
        return make_error("connector '{}' sets protocol_log = true but no --protocol-log-dir is given: "
                          "name a directory for the log, or remove the setting", conn.name);
    return {};
  };
  // Log directories are made (and checked writable) now, so a typo is an error at start-up.
  for (const auto& [flag, dir] : {std::pair{"--protocol-log-dir", opts->protocol_log_dir},
                                  std::pair{"--tracking-log-dir", opts->tracking_log_dir}}) {
    if (dir.empty()) continue;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec || ::access(dir.c_str(), W_OK | X_OK) != 0) {
      log::error("{} {}: {}", flag, dir, ec ? ec.message() : std::string(std::strerror(errno)));
      return 2;
    }
  }
  if (!opts->config_file.empty()) {
    auto config = routing::load_connector_file(opts->config_file);
    if (!config) {
      log::error("connector file {} is invalid:\n{}", opts->config_file, config.error().message());
      return 2;
    }
    if (Status st = check_against_flags(**config); !st) {
      log::error("connector file {}: {}", opts->config_file, st.error().message());
      return 2;
    }
    auto table = routing::Table::build(*config, node);
    if (!table) {
      log::error("connector file {}: {}", opts->config_file, table.error().message());
      return 2;
    }
    log::info("connector file {}: {} connectors loaded (node {})", opts->config_file, (*config)->connectors.size(),
              node.name);
    routes = std::make_unique<routing::TablePublisher>(std::move(*table));
  }

  metrics::Registry registry;
  metrics::RelayMetrics relay_metrics(registry);
  queue::SpoolOptions spool_opts;
  spool_opts.dir = opts->spool_dir;
  spool_opts.direct_io = opts->spool_io == "direct";
  spool_opts.sync_seconds = &relay_metrics.spool_sync_seconds;
  auto spool = queue::Spool::open(spool_opts);
  if (!spool) {
    log::error("spool {}: {}", opts->spool_dir, spool.error().message());
    return 1;
  }
  log::info("spool {}: {} messages queued after recovery", opts->spool_dir, (*spool)->recovered().size());

  // Bind every listen address once per worker (SO_REUSEPORT); port 0 is resolved by the first bind.
  std::vector<std::vector<int>> fds(opts->workers);
  std::string ready;
  for (const auto& text : opts->listen) {
    auto addr = SocketAddress::parse(text);
    if (!addr) {
      log::error("--listen: {}", addr.error().message());
      return 2;
    }
    SocketAddress bound;
    auto opened = engine::open_listeners(*addr, opts->workers, &bound);
    if (!opened) {
      log::error("{}", opened.error().message());
      return 1;
    }
    for (unsigned w = 0; w < opts->workers; ++w) fds[w].push_back((*opened)[w]);
    *addr = bound;
    ready += addr->to_string() + "\n";
    log::info("listening on {}", addr->to_string());
  }

  // Delivery runs when there is a connector table and --hold is not given.
  engine::DeliveryShared delivery;
  delivery.spool = spool->get();
  delivery.hostname = opts->hostname;
  delivery.max_outbound = opts->max_outbound;
  delivery.shutdown_grace = std::chrono::seconds(opts->shutdown_grace);
  delivery.retry.min_backoff = std::chrono::seconds(opts->retry_min);
  delivery.retry.max_backoff = std::chrono::seconds(opts->retry_max);
  delivery.dns = opts->dns;
  delivery.protocol_log_dir = opts->protocol_log_dir;
  delivery.log_max_age_days = opts->log_max_age;
  // The MX loop guard (RFC 5321 §5.1) needs to know who we are: our name, the addresses we listen
  // on (not the wildcard) and the node addresses the operator gave.
  delivery.self_names.push_back(to_lower_ascii(opts->hostname));
  for (const auto& l : opts->listen)
    if (auto a = SocketAddress::parse(l); a && a->host() != "0.0.0.0" && a->host() != "::") delivery.self_addresses.push_back(*a);
  for (const auto& n : opts->node_addresses)
    if (auto a = SocketAddress::parse(n, 0)) delivery.self_addresses.push_back(*a);
  delivery.retry.glitch_retries = opts->glitch_retries;
  delivery.retry.glitch_interval = std::chrono::seconds(opts->glitch_interval);
  delivery.retry.message_expiration = std::chrono::seconds(opts->message_expiration);
  delivery.retry.delay_notice = std::chrono::seconds(opts->delay_notice);
  bool delivering = routes && !opts->hold;

  std::atomic<int> open_connections{0};
  std::vector<std::unique_ptr<engine::Worker>> workers;
  for (unsigned w = 0; w < opts->workers; ++w) {
    engine::WorkerConfig wc;
    wc.id = w;
    if (!opts->worker_cpu_list.empty()) wc.cpu = opts->worker_cpu_list[w % opts->worker_cpu_list.size()];
    wc.listen_fds = fds[w];
    wc.server.hostname = opts->hostname;
    wc.server.limits.max_recipients = opts->max_recipients;
    wc.server.limits.max_message_size = opts->max_message_size;
    wc.server.limits.command_timeout = std::chrono::seconds(opts->command_timeout);
    wc.server.limits.data_block_timeout = std::chrono::seconds(opts->data_timeout);
    wc.relay_networks = opts->relay;
    wc.open_connections = &open_connections;
    wc.max_connections = opts->max_connections;
    wc.spool = spool->get();
    wc.routes = routes.get();
    wc.delivery = delivering ? &delivery : nullptr;
    wc.security = opts->security;
    wc.shutdown_grace = std::chrono::seconds(opts->shutdown_grace);
    wc.tracking_log_dir = opts->tracking_log_dir;
    wc.log_max_age_days = opts->log_max_age;
    workers.push_back(std::make_unique<engine::Worker>(std::move(wc)));
    if (auto st = workers.back()->start(); !st) {
      log::error("worker {}: {}", w, st.error().message());
      for (auto& wk : workers) wk->request_stop();
      return 1;
    }
  }
  if (delivering) {
    for (auto& w : workers) delivery.workers.push_back(w->delivery());
    // Recovered messages go back to their next hops before new mail is taken.
    auto table = routes->current();
    for (auto& r : (*spool)->take_recovered()) {
      auto msg = std::make_shared<queue::QueuedMessage>();
      msg->env = std::move(r.env);
      msg->location = r.location;
      msg->rcpts = std::move(r.rcpts);
      msg->pending.store(static_cast<uint32_t>(r.pending_count()), std::memory_order_relaxed);
      engine::dispatch_message(delivery, table, msg);
    }
  }
  // Reload, as SIGHUP or the admin plane asks: validated on the calling thread; workers pick the new
  // table up at their next iteration; the Unreachable queue is routed again.
  std::mutex reload_mutex;
  auto reload = [&](std::string_view who) -> admin::ActionResult {
    if (!routes) return {admin::ActionStatus::kRejected, "no connector file (--config) to reload"};
    std::lock_guard<std::mutex> g(reload_mutex);
    auto outcome = routing::reload_connector_file(opts->config_file, node, routes.get(), check_against_flags);
    if (!outcome.published) {
      std::string why = fmt::format("{}", fmt::join(outcome.errors, "\n"));
      log::error("{}: connector file {} refused, the previous table stays in use:\n{}", who, opts->config_file, why);
      return {admin::ActionStatus::kFailed, why};
    }
    log::info("{}: connector file {} reloaded (table version {})", who, opts->config_file, outcome.version);
    size_t routed = delivering ? engine::redispatch_unreachable(delivery, routes->current()) : 0;
    if (routed > 0) log::info("reload: {} recipient(s) left the Unreachable queue", routed);
    return {admin::ActionStatus::kOk, fmt::format("connector file reloaded (table version {}); {} recipient(s) left "
                                                  "the Unreachable queue", outcome.version, routed)};
  };
  engine::QueueAdminHooks hooks;
  hooks.reload = [&] { return reload("admin"); };
  hooks.messages_received = [&] {
    uint64_t n = 0;
    for (auto& w : workers) n += w->counters().messages_committed.load(std::memory_order_relaxed);
    return n;
  };
  hooks.inbound_counts = [&] {
    engine::InboundCounts c;
    for (auto& w : workers) {
      auto& k = w->counters();
      c.tls_handshakes += k.tls_handshakes.load(std::memory_order_relaxed);
      c.tls_resumed += k.tls_resumed.load(std::memory_order_relaxed);
      c.tls_failures += k.tls_failures.load(std::memory_order_relaxed);
      c.auth_ok += k.auth_successes.load(std::memory_order_relaxed);
      c.auth_failed += k.auth_failures.load(std::memory_order_relaxed);
    }
    return c;
  };
  hooks.inbound_sessions = [&] { return static_cast<int64_t>(open_connections.load(std::memory_order_relaxed)); };
  hooks.spool_bytes = [dir = opts->spool_dir] {
    std::error_code ec;
    int64_t bytes = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir + "/seg", ec))
      if (e.path().extension() == ".seg") bytes += static_cast<int64_t>(e.file_size(ec));
    return bytes;
  };
  engine::QueueAdmin queue_admin(delivery, std::move(hooks), &relay_metrics);
  std::unique_ptr<admin::AdminServer> admin_server;
  if (!opts->admin_listen.empty()) {
    admin::AdminServerOptions ao;
    ao.listen = opts->admin_listen;
    ao.allow_non_loopback = opts->admin_any_address;
    ao.metrics = &registry;
    auto started = admin::AdminServer::start(queue_admin, ao);
    if (!started) {
      log::error("--admin {}: {}", opts->admin_listen, started.error().message());
      for (auto& wk : workers) wk->request_stop();
      for (auto& wk : workers) wk->join();
      return 2;
    }
    admin_server = std::move(*started);
    log::info("admin plane on http://{} (queues, actions, /metrics)", admin_server->address());
    ready += "admin " + admin_server->address() + "\n";
  }
  for (auto& w : workers) w->open_listeners();
  log::info("ringmail ready: {} workers, relay networks {}, max message size {} bytes{}", opts->workers,
            opts->relay.to_string(), opts->max_message_size,
            delivering ? "" : ", holding all mail (no delivery)");
  if (!opts->ready_file.empty() && !write_file_atomically(opts->ready_file, ready))
    log::warn("cannot write --ready-file {}: {}", opts->ready_file, std::strerror(errno));

  for (;;) {
    int sig = 0;
    if (sigwait(&sigs, &sig) != 0) continue;
    if (sig == SIGHUP) {
      if (!routes) {
        log::info("SIGHUP: no --config given, nothing to reload");
        continue;
      }
      reload("SIGHUP");
      continue;
    }
    log::info("{}: shutting down (stop accepting, finish sessions, sync the spool)", strsignal(sig));
    break;
  }
  if (admin_server) admin_server->stop();  // before the workers it asks go away
  for (auto& w : workers) w->request_stop();
  uint64_t committed = 0, failed = 0, conns = 0;
  for (auto& w : workers) {
    w->join();
    committed += w->counters().messages_committed.load();
    failed += w->counters().commit_failures.load();
    conns += w->counters().accepted_connections.load();
  }
  log::info("stopped: {} connections, {} messages queued, {} spool failures, {} inbound TLS handshakes", conns,
            committed, failed, [&workers] {
              uint64_t n = 0;
              for (auto& w : workers) n += w->counters().tls_handshakes.load();
              return n;
            }());
  if (delivering)
    log::info("delivery: {} recipients delivered, {} deferred, {} failed, {} unreachable; {} messages completed; "
              "{} TLS handshakes, {} resumed",
              delivery.delivered.load(), delivery.deferred.load(), delivery.failed.load(), delivery.unreachable.load(),
              delivery.messages_done.load(), delivery.tls_handshakes.load(), delivery.tls_resumed.load());
  (*spool)->delete_empty_segments();
  return 0;
}

}  // namespace

// jemalloc's defaults for the daemon (MALLOC_CONF still overrides them): a background thread that
// returns freed pages to the system after their decay time. Without it pages freed after a burst
// (TLS record buffers of sessions that went idle, for one) stay resident until the allocator is
// next busy. 400 idle inbound TLS sessions on one worker: 30.4 KiB of RSS each without it, 20.7
// KiB 25 s later with it. Unused when the daemon is built without jemalloc.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true";
}

int main(int argc, char** argv) { return run(argc, argv); }
