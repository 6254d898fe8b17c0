// Micro-benchmarks of the SMTP server protocol code (no I/O): DATA decoding throughput, a whole
// pipelined transaction per iteration on a reused session, and pipelined short commands.
// Run: build-<x>/tests/engine/smtp/smtp_server_bench
#include <benchmark/benchmark.h>

#include <string>

#include "engine/smtp/data_decoder.h"
#include "engine/smtp/server_session.h"

namespace ringmail::smtp {
namespace {

class BenchHooks final : public ServerHooks {
 public:
  std::string new_queue_id() override { return "4Q8bYxk2ZrzN7"; }  // a typical 13-character ID
  WallTime now() override { return WallTime{std::chrono::seconds(1'800'000'000)}; }
};

std::string make_body(size_t bytes) {
  std::string body;
  const std::string line = std::string(76, 'm') + "\r\n";
  while (body.size() < bytes) body += line;
  return body;
}

void BM_DataDecoder(benchmark::State& state) {
  const std::string data = make_body(static_cast<size_t>(state.range(0))) + ".\r\n";
  DataDecoder decoder;
  std::string message;
  message.reserve(data.size());
  for (auto _ : state) {
    decoder.reset(100u << 20, 1000);
    message.clear();
    benchmark::DoNotOptimize(decoder.feed(data, message));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_DataDecoder)->Arg(64 << 10)->Arg(1 << 20);

void BM_PipelinedTransaction(benchmark::State& state) {
  ServerConfig config;
  config.hostname = "mx.bench.test";
  PeerInfo peer;
  peer.remote = *SocketAddress::parse("192.0.2.1:40000");
  peer.relay_allowed = true;
  BenchHooks hooks;
  ServerSession session(config, peer, hooks);
  std::string out;
  session.start(out);
  (void)session.on_input("EHLO client.bench.test\r\n", out);
  const std::string transaction = "MAIL FROM:<sender@example.com> SIZE=20000 BODY=8BITMIME\r\n"
                                  "RCPT TO:<rcpt@example.net>\r\nDATA\r\n" +
                                  make_body(static_cast<size_t>(state.range(0))) + ".\r\n";
  for (auto _ : state) {
    out.clear();
    Action a = session.on_input(transaction, out);
    if (a == Action::kCommit) a = session.on_commit(true, {}, out);
    benchmark::DoNotOptimize(a);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * transaction.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_PipelinedTransaction)->Arg(2 << 10)->Arg(16 << 10);

void BM_PipelinedNoop(benchmark::State& state) {
  ServerConfig config;
  config.hostname = "mx.bench.test";
  PeerInfo peer;
  BenchHooks hooks;
  ServerSession session(config, peer, hooks);
  std::string out;
  session.start(out);
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += "NOOP\r\n";
  for (auto _ : state) {
    out.clear();
    benchmark::DoNotOptimize(session.on_input(batch, out));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 100));
}
BENCHMARK(BM_PipelinedNoop);

}  // namespace
}  // namespace ringmail::smtp

BENCHMARK_MAIN();
