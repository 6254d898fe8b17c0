// Routing-table benchmarks. Lookup: single select() calls timed one by one with the TSC
// (calibrated against steady_clock, timer overhead subtracted), reporting median and p99 as
// counters; domains are random with 1-5 labels, half of them hitting a configured space. Reload:
// parse + compile + publish of a 100k-space file while a reader thread keeps looking up, with the
// reader's longest gap between two lookups as evidence that it was never paused.
#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <thread>
#include <time.h>

#include "routing/config_loader.h"
#include "routing/publisher.h"
#include "routing/table.h"

namespace rr = ringmail::routing;

namespace {

constexpr int kSpacesPerConnector = 10;
const char* const kTlds[] = {"com", "net", "org", "de", "io", "example", "co", "uk"};

std::string random_label(std::mt19937_64& rng) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s(3 + rng() % 8, 'a');
  for (char& c : s) c = kAlphabet[rng() % 36];
  return s;
}

// A domain of `labels` labels ending in a common TLD.
std::string random_domain(std::mt19937_64& rng, int labels) {
  std::string d = kTlds[rng() % std::size(kTlds)];
  for (int i = 1; i < labels; ++i) d = random_label(rng) + "." + d;
  return d;
}

// Connector-file text with `spaces` address spaces (half exact, half wildcard, 1-3 labels under
// the TLD), 10 per connector, plus a "*" catch-all. Also returns the patterns' domains.
std::string make_config_text(size_t spaces, std::vector<std::string>* domains, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string text = "[[connector]]\nname = \"Internet\"\naddress_spaces = [\"*;1\"]\n";
  for (size_t i = 0; i < spaces; ++i) {
    if (i % kSpacesPerConnector == 0) {
      text += fmt::format("[[connector]]\nname = \"c{}\"\nmax_message_size = \"{}MB\"\n"
                          "address_spaces = [\n",
                          i / kSpacesPerConnector, 10 + rng() % 40);
    }
    std::string domain = random_domain(rng, 2 + rng() % 3);
    domains->push_back(domain);
    text += fmt::format("  \"{}{};{}\",\n", (i % 2) ? "*." : "", domain, 1 + rng() % 100);
    if (i % kSpacesPerConnector == kSpacesPerConnector - 1 || i + 1 == spaces) text += "]\n";
  }
  return text;
}

// Query domains: about half hit a configured space (the domain itself or a subdomain of it),
// the rest are random names that fall through to "*". 1-5 labels.
std::vector<std::string> make_queries(const std::vector<std::string>& domains, size_t count,
                                      uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> q;
  q.reserve(count);
  while (q.size() < count) {
    if (rng() % 2 == 0 && !domains.empty()) {
      std::string d = domains[rng() % domains.size()];
      int labels = static_cast<int>(std::count(d.begin(), d.end(), '.')) + 1;
      if (labels < 5 && rng() % 2 == 0) d = random_label(rng) + "." + d;
      q.push_back(d);
    } else {
      q.push_back(random_domain(rng, 1 + rng() % 5));
    }
  }
  return q;
}

struct Fixture {
  std::shared_ptr<const rr::Table> table;  // compiled table
  std::vector<std::string> queries;        // lookup keys, in random order
  std::string text;                        // the connector-file text it came from
};

const Fixture& fixture(size_t spaces) {
  static std::map<size_t, Fixture> cache;
  auto it = cache.find(spaces);
  if (it != cache.end()) return it->second;
  Fixture f;
  std::vector<std::string> domains;
  f.text = make_config_text(spaces, &domains, 42 + spaces);
  auto config = rr::load_connector_text(f.text, "bench.toml");
  if (!config) {
    fmt::print(stderr, "bench config invalid: {}\n", config.error().message().substr(0, 500));
    std::abort();
  }
  f.table = *rr::Table::build(*config, rr::NodeIdentity{"mx1", {}});
  f.queries = make_queries(domains, 1 << 16, 7 + spaces);
  return cache.emplace(spaces, std::move(f)).first->second;
}

// TSC ticks per nanosecond, measured once against steady_clock.
double tsc_per_ns() {
  static const double value = [] {
    auto t0 = std::chrono::steady_clock::now();
    uint64_t c0 = __rdtsc();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(100)) {
    }
    uint64_t c1 = __rdtsc();
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
    return double(c1 - c0) / double(ns.count());
  }();
  return value;
}

inline uint64_t fenced_tsc() {
  _mm_lfence();
  uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

// Median cost of an empty timed region, subtracted from samples.
uint64_t timer_overhead() {
  static const uint64_t value = [] {
    std::vector<uint64_t> s(100000);
    for (auto& v : s) {
      uint64_t a = fenced_tsc();
      v = fenced_tsc() - a;
    }
    std::nth_element(s.begin(), s.begin() + s.size() / 2, s.end());
    return s[s.size() / 2];
  }();
  return value;
}

// CPU time of the calling thread: wall time minus the time other processes had the core.
double thread_cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

double percentile_ns(std::vector<uint64_t>& ticks, double p) {
  size_t k = std::min(ticks.size() - 1, static_cast<size_t>(p * ticks.size()));
  std::nth_element(ticks.begin(), ticks.begin() + k, ticks.end());
  return double(ticks[k]) / tsc_per_ns();
}

void BM_Lookup(benchmark::State& state) {
  const Fixture& f = fixture(static_cast<size_t>(state.range(0)));
  const double per_ns = tsc_per_ns();
  const uint64_t overhead = timer_overhead();
  std::vector<uint64_t> samples;
  samples.reserve(4'000'000);
  size_t i = 0, routed = 0;
  rr::Selection sel;
  for (auto _ : state) {
    const std::string& d = f.queries[i++ & (f.queries.size() - 1)];
    uint64_t t0 = fenced_tsc();
    const rr::Connector* c = f.table->select(d, 1000, &sel);
    uint64_t t1 = fenced_tsc();
    benchmark::DoNotOptimize(c);
    routed += c != nullptr;
    if (samples.size() < samples.capacity()) samples.push_back(t1 - t0 > overhead ? t1 - t0 - overhead : 0);
  }
  state.counters["median_ns"] = percentile_ns(samples, 0.50);
  state.counters["p99_ns"] = percentile_ns(samples, 0.99);
  state.counters["p999_ns"] = percentile_ns(samples, 0.999);
  state.counters["timer_overhead_ns"] = double(overhead) / per_ns;
  state.counters["routed_pct"] = 100.0 * double(routed) / double(state.iterations());
  state.counters["spaces"] = double(f.table->address_space_count());
}
BENCHMARK(BM_Lookup)->Arg(10)->Arg(1000)->Arg(100000)->Iterations(2'000'000)->Unit(benchmark::kNanosecond);

// Back-to-back lookups without per-call timing: mean cost including the loop.
void BM_LookupThroughput(benchmark::State& state) {
  const Fixture& f = fixture(static_cast<size_t>(state.range(0)));
  size_t i = 0;
  rr::Selection sel;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.table->select(f.queries[i++ & (f.queries.size() - 1)], 1000, &sel));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LookupThroughput)->Arg(10)->Arg(1000)->Arg(100000)->Unit(benchmark::kNanosecond);

// Reload of 100k spaces: parse the file text, compile, publish; a reader keeps looking up.
void BM_Reload(benchmark::State& state) {
  const size_t spaces = static_cast<size_t>(state.range(0));
  const Fixture& f = fixture(spaces);
  rr::TablePublisher publisher(f.table);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> max_gap_ticks{0}, reader_lookups{0};
  std::atomic<bool> measuring{false};
  std::thread reader = std::thread([&] {
    rr::TableReader r(publisher);
    rr::Selection sel;
    size_t i = 0;
    uint64_t last = __rdtsc(), gap = 0, n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      r.refresh();
      benchmark::DoNotOptimize(r.table().select(f.queries[i++ & (f.queries.size() - 1)], 1000, &sel));
      uint64_t now = __rdtsc();
      if (measuring.load(std::memory_order_relaxed)) {
        gap = std::max(gap, now - last);
        ++n;
      }
      last = now;
    }
    max_gap_ticks = gap;
    reader_lookups = n;
  });
  double parse_ms = 0, build_ms = 0, publish_ms = 0, parse_cpu_ms = 0, build_cpu_ms = 0;
  int rounds = 0;
  auto reader_gap_us = [&] {
    measuring = false;
    stop = true;
    reader.join();
    return double(max_gap_ticks.load()) / tsc_per_ns() / 1000.0;
  };
  measuring = true;
  auto started = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    double c0 = thread_cpu_ms();
    rr::ConfigLoad load = rr::parse_connector_text(f.text, "bench.toml");
    auto t1 = std::chrono::steady_clock::now();
    double c1 = thread_cpu_ms();
    auto table = rr::Table::build(load.config, rr::NodeIdentity{"mx1", {}});
    auto t2 = std::chrono::steady_clock::now();
    double c2 = thread_cpu_ms();
    parse_cpu_ms += c1 - c0;
    build_cpu_ms += c2 - c1;
    publisher.publish(std::move(*table));  // also frees the table before last, off the reader
    auto t3 = std::chrono::steady_clock::now();
    parse_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
    build_ms += std::chrono::duration<double, std::milli>(t2 - t1).count();
    publish_ms += std::chrono::duration<double, std::milli>(t3 - t2).count();
    ++rounds;
  }
  auto reload_time = std::chrono::steady_clock::now() - started;
  state.counters["reader_max_gap_us"] = reader_gap_us();
  state.counters["reader_lookups"] = double(reader_lookups.load());
  state.counters["parse_ms"] = parse_ms / rounds;
  state.counters["build_ms"] = build_ms / rounds;
  state.counters["publish_ms"] = publish_ms / rounds;
  state.counters["parse_cpu_ms"] = parse_cpu_ms / rounds;
  state.counters["build_cpu_ms"] = build_cpu_ms / rounds;

  // Baseline: the same reader for the same time with no reloads. Its longest gap is what the
  // scheduler alone causes on this machine.
  stop = false;
  max_gap_ticks = 0;
  reader = std::thread([&] {
    rr::TableReader r(publisher);
    rr::Selection sel;
    size_t i = 0;
    uint64_t last = __rdtsc(), gap = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      r.refresh();
      benchmark::DoNotOptimize(r.table().select(f.queries[i++ & (f.queries.size() - 1)], 1000, &sel));
      uint64_t now = __rdtsc();
      gap = std::max(gap, now - last);
      last = now;
    }
    max_gap_ticks = gap;
  });
  auto until = std::chrono::steady_clock::now() + reload_time;
  while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
  stop = true;
  reader.join();
  state.counters["baseline_max_gap_us"] = double(max_gap_ticks.load()) / tsc_per_ns() / 1000.0;
}
BENCHMARK(BM_Reload)->Arg(100000)->Iterations(10)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
