// engine/tls benchmarks: full and resumed client+server handshakes pumped in memory, one record
// exchange on an established session, and the heap held by one idle established client session
// with buffers released (mallinfo2).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include "engine/tls/tls_context.h"
#include "engine/tls/tls_session.h"
#include "tests/engine/tls/test_certs.h"

namespace ringmail::tls {
namespace {

void pump(TlsSession& a, TlsSession& b) {
  std::string plain, wire;
  for (int round = 0; round < 20; ++round) {
    wire.clear();
    a.take_output(wire);
    bool moved = !wire.empty();
    b.feed(wire);
    b.read(plain);
    wire.clear();
    b.take_output(wire);
    moved = moved || !wire.empty();
    a.feed(wire);
    a.read(plain);
    if (!moved) return;
  }
}

struct Fixture {
  testing::TestCertificates certs;
  std::unique_ptr<TlsContext> server = TlsContext::server({certs.cert_file(), certs.key_file()}).value();
  std::unique_ptr<TlsContext> client = TlsContext::client({certs.ca_file(), 16}).value();
};

void handshake(benchmark::State& state, bool resume) {
  Fixture f;
  const char* key = resume ? "mx:25|verify" : "";
  size_t resumed = 0;
  for (auto _ : state) {
    TlsSession c(*f.client), s(*f.server);
    (void)s.start_server();
    (void)c.start_client({"mx.example.test", true, "mx.example.test", key});
    pump(c, s);
    (void)s.write("220 x\r\n");  // carries the TLS 1.3 ticket
    pump(c, s);
    if (!c.established()) state.SkipWithError("handshake failed");
    resumed += c.resumed();
    c.close();
    s.close();
  }
  state.counters["resumed_share"] = static_cast<double>(resumed) / static_cast<double>(state.iterations());
  state.counters["handshakes_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
void BM_FullHandshakeVerified(benchmark::State& state) { handshake(state, false); }
void BM_ResumedHandshakeVerified(benchmark::State& state) { handshake(state, true); }
BENCHMARK(BM_FullHandshakeVerified)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ResumedHandshakeVerified)->Unit(benchmark::kMicrosecond);

// One record each way on an established session, as the relay does per SMTP exchange: the client
// encrypts `size` bytes (a command group or a message body), the server decrypts them and answers
// with one short reply record. Bytes/s counts the client's payload.
void BM_RecordExchange(benchmark::State& state) {
  Fixture f;
  TlsSession c(*f.client), s(*f.server);
  (void)s.start_server();
  (void)c.start_client({"mx.example.test", false, {}, {}});
  pump(c, s);
  (void)s.write("220 x\r\n");
  pump(c, s);
  if (!c.established() || !s.established()) state.SkipWithError("handshake failed");
  const std::string payload(static_cast<size_t>(state.range(0)), 'x');
  const std::string reply = "250 2.0.0 Ok: queued as 0123456789AB\r\n";
  std::string wire, plain;
  for (auto _ : state) {
    (void)c.write(payload);
    wire.clear();
    c.take_output(wire);
    plain.clear();
    s.read_input(wire, plain);
    (void)s.write(reply);
    wire.clear();
    s.take_output(wire);
    plain.clear();
    c.read_input(wire, plain);
    benchmark::DoNotOptimize(plain.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_RecordExchange)->Arg(64)->Arg(5120)->Unit(benchmark::kMicrosecond);

void BM_IdleClientSessionBytes(benchmark::State& state) {
  Fixture f;
  constexpr int kSessions = 200;
  for (auto _ : state) {
    std::vector<std::unique_ptr<TlsSession>> clients, servers;
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < kSessions; ++i) {
      auto c = std::make_unique<TlsSession>(*f.client);
      auto s = std::make_unique<TlsSession>(*f.server);
      (void)s->start_server();
      (void)c->start_client({"mx.example.test", false, {}, {}});
      pump(*c, *s);
      (void)s->write("250 ok\r\n");  // one exchange, then idle
      pump(*c, *s);
      c->release_buffers();
      s->release_buffers();
      clients.push_back(std::move(c));
      servers.push_back(std::move(s));
    }
    size_t both = mallinfo2().uordblks;
    clients.clear();
    size_t servers_only = mallinfo2().uordblks;
    state.counters["client_session_bytes"] = static_cast<double>(both - servers_only) / kSessions;
    state.counters["server_session_bytes"] = static_cast<double>(servers_only - before) / kSessions;
  }
}
BENCHMARK(BM_IdleClientSessionBytes)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ringmail::tls

BENCHMARK_MAIN();
