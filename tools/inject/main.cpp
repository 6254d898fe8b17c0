// ringmail-inject: an SMTP load generator for tests and benchmarks of SMTP receivers on
// loopback. This file wires flags, threads, the progress line and the summary together; the
// protocol is in inject_session.cpp and the I/O in load_loop.cpp.
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "tools/inject/inject_options.h"
#include "tools/inject/load_loop.h"
#include "tools/inject/outcome_log.h"
#include "tools/inject/run_stats.h"

namespace ringmail::inject {
namespace {

SharedRun* g_run = nullptr;  // for the signal handler only

void on_interrupt(int) {
  if (g_run) g_run->interrupted.store(true, std::memory_order_relaxed);
}

uint64_t random_seed() {
  uint64_t seed = 0;
  if (::getrandom(&seed, sizeof seed, 0) != sizeof seed)
    seed = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^ uint64_t(::getpid());
  return seed;
}

// Prints the progress line at most 4 times a second until every worker has finished.
class Progress {
 public:
  Progress(const SharedRun& run, bool enabled) : run_(run), enabled_(enabled) {}
  void worker_finished() {
    std::lock_guard lock(mu_);
    ++finished_;
    cv_.notify_all();
  }
  void wait_for_workers(int workers) {
    std::unique_lock lock(mu_);
    while (finished_ < workers) {
      cv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return finished_ >= workers; });
      if (enabled_ && finished_ < workers) print();
    }
    if (enabled_ && printed_) std::fputs("\r\033[K", stdout);
    std::fflush(stdout);
  }

 private:
  void print() {
    double elapsed = std::chrono::duration<double>(MonoClock::now() - run_.start).count();
    uint64_t done = run_.progress.attempted.load(std::memory_order_relaxed);
    uint64_t ok = run_.progress.accepted.load(std::memory_order_relaxed);
    std::fprintf(stdout, "\r\033[K%llu/%llu done, %llu accepted, %.0f msg/s, %.1f s", (unsigned long long)done,
                 (unsigned long long)run_.options->count, (unsigned long long)ok,
                 elapsed > 0 ? double(ok) / elapsed : 0.0, elapsed);
    std::fflush(stdout);
    printed_ = true;
  }

  const SharedRun& run_;        // counters to show
  const bool enabled_;          // stdout is a TTY and not --quiet
  std::mutex mu_;               // guards finished_
  std::condition_variable cv_;  // signalled when a worker finishes
  int finished_ = 0;            // workers done
  bool printed_ = false;        // a progress line is on screen
};

int run_inject(const InjectOptions& options) {
  OutcomeLog outcome_log;
  if (!options.log_path.empty()) {
    if (Status s = outcome_log.open(options.log_path); !s.ok()) {
      std::fprintf(stderr, "ringmail-inject: %s\n", s.error().message().c_str());
      return 2;
    }
  }
  SharedRun run;
  run.options = &options;
  run.log = &outcome_log;
  run.start = MonoClock::now();
  run.stop_starting = MonoTime::max();
  run.hard_stop = MonoTime::max();
  if (options.duration_s > 0) {
    auto cap = std::chrono::duration_cast<MonoClock::duration>(std::chrono::duration<double>(options.duration_s));
    auto grace = std::chrono::duration_cast<MonoClock::duration>(
        std::chrono::duration<double>(std::min(options.timeout_s, 10.0)));
    run.stop_starting = run.start + cap;
    run.hard_stop = run.stop_starting + grace;
  }
  g_run = &run;
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C kills at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // More connections than messages would only open sessions that have nothing to send.
  const int connections = int(std::min<uint64_t>(uint64_t(options.connections), options.count));
  const int threads = std::min(options.threads, connections);
  const uint64_t seed = random_seed();
  std::vector<std::unique_ptr<LoadLoop>> loops;
  for (int t = 0; t < threads; ++t) {
    int share = connections / threads + (t < connections % threads ? 1 : 0);
    loops.push_back(std::make_unique<LoadLoop>(run, share, seed + uint64_t(t) * 0x9e3779b97f4a7c15ULL));
  }
  Progress progress(run, !options.quiet && ::isatty(STDOUT_FILENO));
  std::vector<Status> results(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      log::set_thread_name(fmt::format("w{}", t));
      results[size_t(t)] = loops[size_t(t)]->run();
      progress.worker_finished();
    });
  }
  progress.wait_for_workers(threads);
  for (auto& w : workers) w.join();
  g_run = nullptr;

  RunStats total;
  for (auto& l : loops) total.merge(l->stats());
  RunInfo info;
  info.target = options.target.to_string();
  info.connections = connections;
  info.threads = threads;
  info.requested = options.count;
  info.elapsed_s = std::chrono::duration<double>(MonoClock::now() - run.start).count();
  info.time_capped = run.time_capped.load() && !run.interrupted.load();
  for (auto& r : results)
    if (!r.ok()) std::fprintf(stderr, "ringmail-inject: %s\n", r.error().message().c_str());
  std::string summary = options.json ? format_summary_json(info, total) : format_summary_text(info, total);
  std::fputs(summary.c_str(), stdout);
  std::fflush(stdout);
  bool ok = run_succeeded(info, total) && std::all_of(results.begin(), results.end(), [](auto& r) { return r.ok(); });
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace ringmail::inject

int main(int argc, char** argv) {
  int exit_code = 0;
  auto options = ringmail::inject::parse_inject_options(argc, argv, &exit_code);
  if (!options) return exit_code;
  return ringmail::inject::run_inject(*options);
}
