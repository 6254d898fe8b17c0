// Cache hit latency (target: median under 200 ns) and the CPU cost of a miss without network
// time: MX + A + AAAA answers parsed from real packets, assembled, cached, waiter called.
//   build/release/bench/dns/dns_bench --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <deque>

#include "routing/dns/mx_resolver.h"
#include "tests/routing/dns/dns_packet_builder.h"

namespace rd = ringmail::routing::dns;
using ringmail::testing::DnsPacketBuilder;

namespace {

// Answers every question at once from a prepared packet, parsed the way AresTransport does.
class PacketTransport final : public rd::DnsTransport {
 public:
  void query(std::string_view name, uint16_t type, Done done) override {
    const std::vector<uint8_t>& p = type == rd::kTypeMx ? (mx_for ? *mx_for : mx_) : type == rd::kTypeA ? a_ : aaaa_;
    done(rd::parse_answer(p.data(), static_cast<int>(p.size()), name, type));
  }
  void process(int, bool, bool) override {}
  std::optional<std::chrono::nanoseconds> next_timeout() override { return std::nullopt; }
  void cancel_all() override {}

  // Owner names in the packets do not match every asked name, so answer with the asked name.
  void prepare(std::string_view domain) {
    mx_ = DnsPacketBuilder(domain, rd::kTypeMx)
              .mx(domain, 600, 10, "mx1.bench.test")
              .mx(domain, 600, 20, "mx2.bench.test")
              .build();
  }
  std::vector<uint8_t> mx_;
  const std::vector<uint8_t>* mx_for = nullptr;  // prepared elsewhere (miss benchmark)
  std::vector<uint8_t> a_ = DnsPacketBuilder("mx1.bench.test", rd::kTypeA).a("mx1.bench.test", 300, "192.0.2.1").build();
  std::vector<uint8_t> aaaa_ =
      DnsPacketBuilder("mx1.bench.test", rd::kTypeAaaa).soa("bench.test", 300, 60).build();
};

class NullIo final : public rd::DnsIoDriver {
 public:
  void watch(int, bool, bool) override {}
  void unwatch(int) override {}
  void set_timer(std::chrono::nanoseconds) override {}
  void clear_timer() override {}
};

void BM_CacheHit(benchmark::State& state) {
  PacketTransport transport;
  NullIo io;
  rd::DnsSettings settings;
  rd::MxResolver resolver(transport, io, ringmail::SystemClock::instance(), settings);
  // Fill the cache with many domains so the hash table is not trivially small.
  for (int i = 0; i < 10000; ++i) {
    std::string d = "domain" + std::to_string(i) + ".example.com";
    transport.prepare(d);
    (void)resolver.resolve(d, [](rd::MxResolver::AnswerPtr) {});
    resolver.on_timer();
  }
  std::string domain = "domain4242.example.com";
  for (auto _ : state) {
    rd::MxResolver::AnswerPtr a = resolver.resolve(domain, [](rd::MxResolver::AnswerPtr) {});
    benchmark::DoNotOptimize(a);
  }
  if (resolver.answer_stats().hits < static_cast<uint64_t>(state.iterations())) state.SkipWithError("not a hit");
}
BENCHMARK(BM_CacheHit);

void BM_MissWithoutNetwork(benchmark::State& state) {
  PacketTransport transport;
  NullIo io;
  rd::DnsSettings settings;
  settings.cache.capacity = 100'000;
  rd::MxResolver resolver(transport, io, ringmail::SystemClock::instance(), settings);
  // One distinct domain per iteration, its MX packet built beforehand (not timed).
  std::vector<std::string> domains;
  std::vector<std::vector<uint8_t>> packets;
  for (int i = 0; i < 100'000; ++i) {
    domains.push_back("miss" + std::to_string(i) + ".example.net");
    transport.prepare(domains.back());
    packets.push_back(transport.mx_);
  }
  size_t next = 0, answered = 0;
  for (auto _ : state) {
    size_t i = next++ % domains.size();
    transport.mx_for = &packets[i];
    (void)resolver.resolve(domains[i], [&](rd::MxResolver::AnswerPtr a) { answered += a->ok(); });
    resolver.on_timer();  // delivers the deferred answer, as the loop would
  }
  if (answered != static_cast<size_t>(state.iterations())) state.SkipWithError("miss did not resolve");
}
BENCHMARK(BM_MissWithoutNetwork)->Iterations(100'000);

}  // namespace

BENCHMARK_MAIN();
