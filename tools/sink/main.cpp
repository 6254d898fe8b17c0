// ringmail-sink: parses flags, binds every --listen address once per worker (SO_REUSEPORT),
// starts the workers, writes --ready-file, and then the main thread only waits for signals and
// reports counters (--stats-interval, --stats-file). SIGTERM/SIGINT (or --exit-after) → stop the
// workers, print one summary line, exit 0. With --tls-cert/--tls-key one server TLS context is
// loaded here and shared by every worker. The SMTP work happens on the workers' rings.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "common/log.h"
#include "common/text_io.h"
#include "engine/net/listener.h"
#include "engine/loop/loop.h"
#include "engine/loop/process_setup.h"
#include "tools/sink/message_recorder.h"
#include "tools/sink/sink_options.h"
#include "tools/sink/sink_worker.h"

using namespace ringmail;
using namespace ringmail::sink;

namespace {

std::string counters_as_lines(const SinkCounters& c) {
  return fmt::format(
      "connections={}\nopen_connections={}\nmessages_accepted={}\nrecipients_accepted={}\nrcpt_faults={}\n"
      "data_faults={}\ndropped_mid_data={}\noversize={}\nmessage_bytes={}\nbytes_received={}\n"
      "tls_handshakes={}\ntls_resumed={}\ntls_failures={}\n",
      c.connections.load(), c.open_connections.load(), c.messages.load(), c.rcpts.load(), c.rcpt_faults.load(),
      c.data_faults.load(), c.dropped.load(), c.oversize.load(), c.message_bytes.load(), c.bytes_received.load(),
      c.tls_handshakes.load(), c.tls_resumed.load(), c.tls_failures.load());
}

std::string counters_as_line(const SinkCounters& c) {
  return fmt::format(
      "connections={} open={} accepted={} rejected_rcpt={} rejected_data={} dropped_mid_data={} oversize={} "
      "message_bytes={} bytes_received={} tls_handshakes={} tls_resumed={} tls_failures={}",
      c.connections.load(), c.open_connections.load(), c.messages.load(), c.rcpt_faults.load(),
      c.data_faults.load(), c.dropped.load(), c.oversize.load(), c.message_bytes.load(), c.bytes_received.load(),
      c.tls_handshakes.load(), c.tls_resumed.load(), c.tls_failures.load());
}

int run(int argc, char** argv) {
  int exit_code = 0;
  auto parsed = parse_sink_options(argc, argv, &exit_code);
  if (!parsed) return exit_code;
  const SinkOptions& opts = *parsed;
  if (opts.quiet) log::set_level(log::Level::kWarn);

  // Signals go to this thread only (sigwait); workers inherit the blocked mask. --exit-after
  // raises SIGTERM from a worker, which lands here too.
  sigset_t sigs;
  if (auto st = engine::prepare_process({SIGTERM, SIGINT}, &sigs); !st) {
    log::error("{}", st.error().message());
    return 1;
  }

  SinkShared shared;
  shared.options = &opts;
  std::unique_ptr<MessageRecorder> recorder;
  if (opts.responder.keep_body) {
    auto r = MessageRecorder::open(opts.record_path, opts.save_dir);
    if (!r) {
      log::error("{}", r.error().message());
      return 1;
    }
    recorder = std::move(*r);
    shared.recorder = recorder.get();
  }

  std::unique_ptr<tls::TlsContext> tls_context;
  if (!opts.tls_cert.empty()) {
    auto ctx = tls::TlsContext::server({opts.tls_cert, opts.tls_key});
    if (!ctx) {
      log::error("{}", ctx.error().message());
      return 1;
    }
    tls_context = std::move(*ctx);
    shared.tls = tls_context.get();
  }

  // Bind each address once per worker; port 0 is resolved by the first bind and reused.
  std::vector<std::vector<int>> fds(opts.workers);
  std::string ready;
  for (const SocketAddress& wanted : opts.listen) {
    SocketAddress addr;
    auto opened = engine::open_listeners(wanted, opts.workers, &addr);
    if (!opened) {
      log::error("{}", opened.error().message());
      return 1;
    }
    for (unsigned w = 0; w < opts.workers; ++w) fds[w].push_back((*opened)[w]);
    shared.listen_names.push_back(addr.to_string());
    ready += addr.to_string() + "\n";
  }

  std::vector<std::unique_ptr<SinkWorker>> workers;
  for (unsigned w = 0; w < opts.workers; ++w) {
    workers.push_back(std::make_unique<SinkWorker>(w, shared, std::move(fds[w])));
    if (auto st = workers.back()->start(); !st) {
      log::error("worker {}: {}", w, st.error().message());
      for (auto& wk : workers) wk->request_stop();
      return 1;
    }
  }
  if (!opts.ready_file.empty() && !write_file_atomically(opts.ready_file, ready)) {
    log::error("cannot write --ready-file {}: {}", opts.ready_file, std::strerror(errno));
    for (auto& wk : workers) wk->request_stop();
    return 1;
  }
  log::info("ringmail-sink listening on {} with {} worker(s)", fmt::join(shared.listen_names, ", "), opts.workers);

  // Wait for a signal, waking every 100 ms for the stats outputs.
  using Clock = std::chrono::steady_clock;
  auto next_file = Clock::now();
  auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opts.stats_interval_s));
  auto next_line = Clock::now() + interval;
  for (;;) {
    timespec ts{0, 100 * 1000 * 1000};
    int sig = sigtimedwait(&sigs, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) break;
    auto now = Clock::now();
    if (!opts.stats_file.empty() && now >= next_file) {
      write_file_atomically(opts.stats_file, counters_as_lines(shared.counters));
      next_file = now + std::chrono::seconds(1);
    }
    if (opts.stats_interval_s > 0 && now >= next_line) {
      std::printf("stats: %s\n", counters_as_line(shared.counters).c_str());
      std::fflush(stdout);
      next_line = now + interval;
    }
  }
  for (auto& w : workers) w->request_stop();
  for (auto& w : workers) w->join();
  if (!opts.stats_file.empty() && !write_file_atomically(opts.stats_file, counters_as_lines(shared.counters)))
    log::warn("cannot write --stats-file {}: {}", opts.stats_file, std::strerror(errno));
  std::printf("summary: %s\n", counters_as_line(shared.counters).c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
