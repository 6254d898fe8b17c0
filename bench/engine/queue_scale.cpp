// ringmail-queue-scale: the queue at scale (issue 6). Writes a spool holding N recipients spread
// over D destination domains (messages of R recipients, each recipient at a different domain),
// then, as a restart would: opens the spool (recovery), hands every message to delivery (one
// worker; the DNS-routed next hops wait for the resolver, so nothing is sent), and reports
//   - the recovery time (spool scan + building the in-memory queues),
//   - the memory of the in-memory queue index per recipient (malloc accounting, bodies excluded:
//     they stay in the spool),
//   - the time to build the queue summary the admin plane lists (every queue with its counts).
//   ringmail-queue-scale [--recipients 1000000] [--destinations 10000] [--per-message 10] [--body 512]
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "common/clock.h"
#include "common/log.h"
#include "engine/delivery/delivery.h"
#include "engine/loop/loop.h"
#include "engine/loop/ring_file_io.h"
#include "queue/file_io.h"
#include "queue/spool.h"
#include "queue/spool_writer.h"
#include "routing/config_loader.h"

using namespace ringmail;
using Steady = std::chrono::steady_clock;
using engine::Loop;
using engine::RingFileIo;

namespace {

size_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

double seconds_since(Steady::time_point t) { return std::chrono::duration<double>(Steady::now() - t).count(); }

struct NoopCallback final : queue::CommitCallback {
  size_t ok = 0, failed = 0;
  void committed(queue::QueueId, Status st) override { st.ok() ? ++ok : ++failed; }
};

}  // namespace

int main(int argc, char** argv) {
  size_t recipients = 1'000'000, destinations = 10'000, per_message = 10, body_size = 512;
  std::string dir;
  CLI::App app{"ringmail-queue-scale: recovery time, memory per queued recipient and queue-summary time"};
  app.add_option("--recipients", recipients, "queued recipients in total")->capture_default_str();
  app.add_option("--destinations", destinations, "distinct recipient domains (next hops)")->capture_default_str();
  app.add_option("--per-message", per_message, "recipients per message")->capture_default_str();
  app.add_option("--body", body_size, "message size in bytes")->capture_default_str();
  app.add_option("--dir", dir, "spool directory to use (default: a new one under /tmp, removed at the end)");
  CLI11_PARSE(app, argc, argv);
  ringmail::log::set_level(ringmail::log::Level::kError);
  bool remove_dir = dir.empty();
  if (dir.empty()) {
    char tmpl[] = "/tmp/ringmail-queue-scale-XXXXXX";
    if (!mkdtemp(tmpl)) return 1;
    dir = tmpl;
  }
  size_t messages = (recipients + per_message - 1) / per_message;

  // 1. Build the spool (not measured).
  {
    auto spool = queue::Spool::open({dir + "/spool"});
    if (!spool) {
      std::fprintf(stderr, "%s\n", spool.error().message().c_str());
      return 1;
    }
    queue::BlockingFileIo io;
    auto writer = (*spool)->make_writer(0, io, SystemClock::instance());
    if (!writer) return 1;
    NoopCallback cb;
    std::string body(body_size, 'x');
    size_t rcpt = 0;
    for (size_t m = 0; m < messages; ++m) {
      queue::StoredEnvelope env;
      env.id = (*writer)->next_id();
      env.arrival = std::chrono::system_clock::now();
      env.mail_from = "bulk-sender@example.org";
      env.client = "[127.0.0.1]:40000 bench";
      for (size_t j = 0; j < per_message && rcpt < recipients; ++j, ++rcpt)
        env.rcpts.push_back(fmt::format("user{}@d{}.example", rcpt, rcpt % destinations));
      (*writer)->append(env, body, &cb);
      if (m % 512 == 511) io.drain();
    }
    bool closed = false;
    (*writer)->close([&] { closed = true; });
    while (!closed) io.drain();
    if (cb.failed) return 1;
  }

  // 2. "Restart": recover and build the queues.
  auto loop = Loop::create({});
  if (!loop) {
    std::fprintf(stderr, "%s\n", loop.error().message().c_str());
    return 1;
  }
  RingFileIo ring_io(**loop);
  size_t heap0 = heap_in_use();
  auto t0 = Steady::now();
  auto spool = queue::Spool::open({dir + "/spool"});
  if (!spool) return 1;
  double scan_s = seconds_since(t0);
  auto config = routing::load_connector_text(
      "[[connector]]\nname = \"Internet\"\naddress_spaces = [\"*\"]\n", "bench");
  if (!config) {
    std::fprintf(stderr, "%s\n", config.error().message().c_str());
    return 1;
  }
  auto table = routing::Table::build(*config, {"bench", {}});
  if (!table) return 1;
  engine::DeliveryShared shared;
  shared.spool = spool->get();
  shared.hostname = "bench.example";
  engine::Delivery delivery(0, **loop, ring_io, shared);
  shared.workers.push_back(&delivery);
  if (auto st = delivery.start(); !st) {
    std::fprintf(stderr, "%s\n", st.error().message().c_str());
    return 1;
  }
  size_t queued_rcpts = 0;
  for (auto& r : (*spool)->take_recovered()) {
    auto msg = std::make_shared<queue::QueuedMessage>();
    msg->env = std::move(r.env);
    msg->location = r.location;
    msg->rcpts = std::move(r.rcpts);
    msg->pending.store(static_cast<uint32_t>(r.pending_count()), std::memory_order_relaxed);
    queued_rcpts += msg->env.rcpts.size();
    engine::dispatch_message(shared, *table, msg);
  }
  (*loop)->post([&] { (*loop)->stop(); });  // after every enqueue posted above
  (*loop)->run();
  double recover_s = seconds_since(t0);
  malloc_trim(0);
  size_t heap1 = heap_in_use();

  // 3. The queue summary (what GET /queues lists).
  auto t1 = Steady::now();
  auto views = delivery.queue_views();
  double summary_ms = seconds_since(t1) * 1000;
  size_t listed = 0;
  for (const auto& v : views) listed += v.recipients;

  std::printf("recipients queued:        %zu in %zu messages, %zu destinations (%zu queues listed, %zu recipients)\n",
              queued_rcpts, messages, destinations, views.size(), listed);
  std::printf("recovery after restart:   %.2f s (spool scan %.2f s, building the queues %.2f s)\n", recover_s, scan_s,
              recover_s - scan_s);
  std::printf("queue index memory:       %.1f MiB, %.0f bytes per queued recipient (malloc in use, bodies in the spool)\n",
              double(heap1 - heap0) / (1 << 20), double(heap1 - heap0) / double(queued_rcpts));
  std::printf("queue summary:            %.1f ms for %zu queues\n", summary_ms, views.size());
  bool stopped = false;
  delivery.stop([&] { stopped = true; });
  while (!stopped) {
    (*loop)->post([&] { (*loop)->stop(); });
    (*loop)->run();
  }
  if (remove_dir) std::filesystem::remove_all(dir);
  return listed == queued_rcpts ? 0 : 1;
}
