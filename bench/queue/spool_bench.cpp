// spool_bench: the group-commit effect. Appends 5 KB messages with BlockingFileIo in rounds of
// `batch` appends followed by drain() (write + fdatasync per round; the pipeline sends the first
// record of a round on its own, so a round costs two syncs when batch > 1). The spool lives under
// $TMPDIR (set it to the file system you want to measure). Counters: records/s, records per sync.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/clock.h"
#include "queue/spool.h"
#include "queue/spool_writer.h"

namespace {

using namespace ringmail;
using namespace ringmail::queue;

struct CountingCallback final : CommitCallback {
  uint64_t ok = 0, failed = 0;  // callbacks seen
  void committed(QueueId, Status s) override { s.ok() ? ++ok : ++failed; }
};

void BM_GroupCommit(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  std::string tmpl = (std::filesystem::temp_directory_path() / "ringmail-bench-XXXXXX").string();
  std::string dir = ::mkdtemp(tmpl.data());
  {
    auto spool = Spool::open(SpoolOptions{dir + "/spool"});
    if (!spool.ok()) {
      state.SkipWithError(spool.error().message().c_str());
      return;
    }
    BlockingFileIo io;
    auto writer = (*spool)->make_writer(0, io, SystemClock::instance());
    CountingCallback cb;
    StoredEnvelope env;
    env.mail_from = "bench@example.org";
    env.rcpts = {"rcpt@example.net"};
    env.client = "[127.0.0.1]:1 bench";
    const std::string body(5000, 'x');
    for (auto _ : state) {
      for (size_t i = 0; i < batch; ++i) {
        env.id = (*writer)->next_id();
        (*writer)->append(env, body, &cb);
      }
      io.drain();
    }
    (*writer)->close([] {});
    io.drain();
    auto st = (*writer)->stats();
    state.SetItemsProcessed(static_cast<int64_t>(cb.ok));
    state.counters["recs_per_sync"] = st.syncs ? static_cast<double>(st.records) / static_cast<double>(st.syncs) : 0;
    state.counters["sync_us_avg"] = st.syncs ? static_cast<double>(st.sync_ns_sum) / 1e3 / static_cast<double>(st.syncs) : 0;
    if (cb.failed) state.SkipWithError("records failed");
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_GroupCommit)->Arg(1)->Arg(16)->Arg(64)->Arg(128)->Arg(512)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
