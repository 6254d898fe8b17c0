// commit_latency_bench: what one lock-step commit (append ~10 KB, make it durable, wait) costs through
// io_uring, by file state and by operation shape. Not ringmail code paths: raw liburing, to decide
// what the spool writer should do. The file lives under $TMPDIR (use the spool's file system).
//   state: 0 = fallocate'd (unwritten extents), 1 = pre-zeroed (written and synced beforehand)
//   shape: 0 = write, wait, fdatasync, wait (the writer today); 1 = write + fdatasync linked
//          (IOSQE_IO_LINK, one submission); 2 = one write with RWF_DSYNC; 3 = O_DIRECT write with
//          RWF_DSYNC (512-byte aligned); 4 = O_DIRECT write, then fdatasync
// Counter proc_cpu_us: CPU of the whole process per commit, io_uring's io-wq worker threads included
// (getrusage RUSAGE_SELF), which is what a loaded 2-core host pays for each commit.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kFileBytes = 256ull << 20;  // commits never reach the end in one benchmark run
constexpr size_t kCommitBytes = 10480;         // two 5 KB records, 8-byte aligned, not block aligned

// Waits for `n` completions; returns false if any failed.
bool reap(io_uring& ring, unsigned n) {
  bool ok = true;
  for (unsigned i = 0; i < n; ++i) {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(&ring, &cqe) != 0) return false;
    if (cqe->res < 0) ok = false;
    io_uring_cqe_seen(&ring, cqe);
  }
  return ok;
}

// Busy CPU time of the whole machine (all cores, every process and kernel thread), from /proc/stat.
double machine_cpu_us() {
  FILE* f = ::fopen("/proc/stat", "r");
  if (f == nullptr) return 0;
  unsigned long long v[8] = {};
  int n = ::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]);
  ::fclose(f);
  if (n != 8) return 0;
  const double busy = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
  return busy * 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double process_cpu_us() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

int make_file(const std::string& path, bool prezero) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (::fallocate(fd, 0, 0, static_cast<off_t>(kFileBytes)) != 0) return -1;
  if (prezero) {
    std::vector<char> zeros(1 << 20, 0);
    for (uint64_t off = 0; off < kFileBytes; off += zeros.size())
      if (::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(off)) != static_cast<ssize_t>(zeros.size()))
        return -1;
  }
  if (::fdatasync(fd) != 0) return -1;
  return fd;
}

void BM_Commit(benchmark::State& state) {
  const bool prezero = state.range(0) == 1;
  const int shape = static_cast<int>(state.range(1));
  std::string tmpl = (std::filesystem::temp_directory_path() / "ringmail-commit-XXXXXX").string();
  std::string dir = ::mkdtemp(tmpl.data());
  int fd = make_file(dir + "/seg", prezero);
  int dfd = shape >= 3 ? ::open((dir + "/seg").c_str(), O_RDWR | O_DIRECT | O_CLOEXEC) : -1;
  if (shape >= 3) {
    if (dfd < 0) fd = -1;
    else std::swap(fd, dfd);
  }
  io_uring ring;
  if (fd < 0 || io_uring_queue_init(8, &ring, 0) != 0) {
    state.SkipWithError("setup failed");
    std::filesystem::remove_all(dir);
    return;
  }
  const size_t commit_bytes = shape >= 3 ? (kCommitBytes + 511) / 512 * 512 : kCommitBytes;
  void* mem = nullptr;
  if (::posix_memalign(&mem, 4096, commit_bytes) != 0) std::abort();
  char* data = static_cast<char*>(mem);
  std::fill(data, data + commit_bytes, 'x');
  uint64_t offset = 4096;
  bool ok = true;
  const double cpu0 = process_cpu_us();
  const double mcpu0 = machine_cpu_us();
  for (auto _ : state) {
    if (offset + commit_bytes > kFileBytes) offset = 4096;
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_write(sqe, fd, data, static_cast<unsigned>(commit_bytes), offset);
    if (shape == 2 || shape == 3) sqe->rw_flags = RWF_DSYNC;
    if (shape == 1) {
      sqe->flags |= IOSQE_IO_LINK;
      io_uring_prep_fsync(io_uring_get_sqe(&ring), fd, IORING_FSYNC_DATASYNC);
      io_uring_submit(&ring);
      ok &= reap(ring, 2);
    } else {
      io_uring_submit(&ring);
      ok &= reap(ring, 1);
      if (shape == 0 || shape == 4) {
        io_uring_prep_fsync(io_uring_get_sqe(&ring), fd, IORING_FSYNC_DATASYNC);
        io_uring_submit(&ring);
        ok &= reap(ring, 1);
      }
    }
    offset += commit_bytes;
  }
  const double cpu = process_cpu_us() - cpu0;
  state.counters["proc_cpu_us"] = cpu / static_cast<double>(std::max<int64_t>(1, state.iterations()));
  state.counters["machine_cpu_us"] =
      (machine_cpu_us() - mcpu0) / static_cast<double>(std::max<int64_t>(1, state.iterations()));
  if (!ok) state.SkipWithError("an operation failed");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  io_uring_queue_exit(&ring);
  ::close(fd);
  if (dfd >= 0) ::close(dfd);
  ::free(mem);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Commit)
    ->ArgNames({"prezeroed", "shape"})
    ->ArgsProduct({{0, 1}, {0, 1, 2, 3, 4}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
