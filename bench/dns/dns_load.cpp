// dns_load: resolves N distinct domains (default 100,000) through MxResolver against a local
// Knot server serving a generated zone, with a bounded number of lookups in flight, and reports
// lookups/s, DNS queries/s (counted by Knot) and peak RSS. Bounded by --count and --seconds.
//   build/release/bench/dns/dns_load --count 100000 --in-flight 500 --seconds 120
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>

#include "routing/dns/ares_transport.h"
#include "routing/dns/mx_resolver.h"
#include "routing/dns/poll_dns_loop.h"
#include "tests/routing/dns/knot_server.h"

namespace rd = ringmail::routing::dns;

namespace {

long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

std::string load_zone(int count, int hosts) {
  std::string z =
      "$ORIGIN load.test.\n$TTL 3600\n@ IN SOA ns.load.test. hostmaster.load.test. 1 3600 600 86400 60\n"
      "@ IN NS ns.load.test.\nns IN A 127.0.0.1\n";
  for (int h = 0; h < hosts; ++h) z += fmt::format("mx{} IN A 127.0.{}.{}\n", h, 10 + h / 250, 1 + h % 250);
  for (int i = 0; i < count; ++i) z += fmt::format("d{} IN MX 10 mx{}.load.test.\n", i, i % hosts);
  return z;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dns_load: distinct-domain MX lookups through the cache against a local Knot"};
  int count = 100'000, in_flight = 500, hosts = 100, seconds = 120;
  app.add_option("--count", count, "distinct domains to resolve")->check(CLI::Range(1, 1'000'000));
  app.add_option("--in-flight", in_flight, "lookups outstanding at once")->check(CLI::Range(1, 100'000));
  app.add_option("--hosts", hosts, "distinct MX hosts shared by the domains")->check(CLI::Range(1, 10'000));
  app.add_option("--seconds", seconds, "give up after this long")->check(CLI::Range(1, 3600));
  CLI11_PARSE(app, argc, argv);

  long rss_at_start = peak_rss_kib();
  auto knot = ringmail::testing::KnotServer::start({{"load.test", load_zone(count, hosts)}});
  if (!knot) {
    fmt::print(stderr, "dns_load: {}\n", knot.error().message());
    return 1;
  }
  rd::DnsSettings settings;
  settings.servers = {(*knot)->address()};
  settings.cache.capacity = static_cast<size_t>(count) + 1000;
  rd::PollDnsLoop loop;
  auto transport = rd::AresTransport::create(loop, settings);
  if (!transport) {
    fmt::print(stderr, "dns_load: {}\n", transport.error().message());
    return 1;
  }
  auto resolver = std::make_unique<rd::MxResolver>(**transport, loop, ringmail::SystemClock::instance(), settings);
  loop.attach(resolver.get());

  uint64_t mx_before = (*knot)->counter("query-type[MX]"), a_before = (*knot)->counter("query-type[A]");
  uint64_t aaaa_before = (*knot)->counter("query-type[AAAA]");
  int started = 0, answered = 0, ok = 0, outstanding = 0;
  std::map<std::string, int> failures;  // answer text → count (the first words matter)
  auto tally = [&](const rd::MxAnswer& a) {
    ok += a.ok();
    if (!a.ok()) ++failures[a.text.substr(0, a.text.find(' ', 12)) + " ..." + a.text.substr(a.text.rfind(':'))];
  };
  auto t0 = std::chrono::steady_clock::now();
  auto give_up = t0 + std::chrono::seconds(seconds);
  while (answered < count && std::chrono::steady_clock::now() < give_up) {
    while (started < count && outstanding < in_flight) {
      ++started;
      ++outstanding;
      auto hit = resolver->resolve(fmt::format("d{}.load.test", started - 1), [&](rd::MxResolver::AnswerPtr a) {
        --outstanding;
        ++answered;
        tally(*a);
      });
      if (hit) {
        --outstanding;
        ++answered;
        tally(*hit);
      }
    }
    int before = answered;  // dispatch until at least one more answer (room for another lookup)
    loop.run_until([&] { return answered > before; }, std::chrono::seconds(1));
  }
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t mx = (*knot)->counter("query-type[MX]") - mx_before;
  uint64_t addr = (*knot)->counter("query-type[A]") - a_before + (*knot)->counter("query-type[AAAA]") - aaaa_before;
  fmt::print("domains {} answered {} ok {} in {:.2f} s: {:.0f} lookups/s\n", count, answered, ok, elapsed,
             answered / elapsed);
  fmt::print("Knot saw {} MX + {} A/AAAA queries: {:.0f} DNS queries/s; c-ares sockets udp {} tcp {}\n", mx, addr,
             (mx + addr) / elapsed, (*transport)->stats().udp_sockets, (*transport)->stats().tcp_sockets);
  fmt::print("cache: {} answers, {} records; peak RSS {} MiB (at start: {} MiB)\n",
             resolver->answers_cached(), resolver->records_cached(), peak_rss_kib() / 1024, rss_at_start / 1024);
  for (const auto& [text, n] : failures) fmt::print("  {} x {}\n", n, text);
  resolver.reset();
  return answered == count && ok == count ? 0 : 1;
}
