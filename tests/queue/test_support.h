// Shared helpers for the queue tests: a temporary directory, a FileIo double that holds
// completions (and checks durability facts), a commit-callback recorder and envelope makers.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "queue/envelope.h"
#include "queue/file_io.h"
#include "queue/spool_writer.h"

namespace ringmail::queue::testing {

// A fresh directory under $TMPDIR, removed with its contents at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ringmail-queue-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string spool() const { return path_ + "/spool"; }

 private:
  std::string path_;  // absolute path of the directory
};

inline std::string fd_path(int fd) {
  char buf[4096];
  ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// Holds every operation until the test completes it. Writes and syncs run at completion time (the
// most adversarial moment). It tracks what is durable: a file's bytes are durable up to the
// contiguous written prefix seen when a datasync was *issued*, once that datasync completes; a
// directory entry is durable once an fsync of the directory issued after its creation completes.
class HoldingFileIo final : public FileIo {
 public:
  enum class Kind { kWrite, kWriteDurable, kRead, kDatasync, kFsync };
  struct Held {
    Kind kind;                         // operation
    int fd;                            // target
    const void* wdata;                 // write source
    void* rdata;                       // read destination
    size_t len;                        // bytes
    uint64_t offset;                   // file offset
    Op* op;                            // completion
    std::string path;                  // fd's path at submit time
    uint64_t covers = 0;               // datasync: contiguous written prefix at issue
    size_t writes_done = 0;            // datasync: writes of the file completed at issue
    std::set<std::string> entries;     // directory fsync: names present at issue
  };

  void write(int fd, const void* data, size_t len, uint64_t offset, Op* op) override {
    held_.push_back({Kind::kWrite, fd, data, nullptr, len, offset, op, fd_path(fd)});
    ++issued_[Kind::kWrite];
  }
  // Durable on completion (RWF_DSYNC): logged as written and durable at once.
  void write_durable(int fd, const void* data, size_t len, uint64_t offset, Op* op) override {
    held_.push_back({Kind::kWriteDurable, fd, data, nullptr, len, offset, op, fd_path(fd)});
    ++issued_[Kind::kWriteDurable];
  }
  void read(int fd, void* data, size_t len, uint64_t offset, Op* op) override {
    held_.push_back({Kind::kRead, fd, nullptr, data, len, offset, op, fd_path(fd)});
    ++issued_[Kind::kRead];
  }
  void datasync(int fd, Op* op) override {
    Held h{Kind::kDatasync, fd, nullptr, nullptr, 0, 0, op, fd_path(fd)};
    h.covers = written_prefix(h.path);
    h.writes_done = log_[h.path].size();
    held_.push_back(std::move(h));
    ++issued_[Kind::kDatasync];
  }
  void fsync(int fd, Op* op) override {
    Held h{Kind::kFsync, fd, nullptr, nullptr, 0, 0, op, fd_path(fd)};
    if (DIR* d = ::opendir(h.path.c_str())) {
      while (dirent* e = ::readdir(d)) h.entries.insert(h.path + "/" + e->d_name);
      ::closedir(d);
    }
    held_.push_back(std::move(h));
    ++issued_[Kind::kFsync];
  }

  // Inline writes (FileIo::write_now) run at once and count as completed writes; off (0) unless a
  // test sets a limit. fail_inline_errno makes the next inline write fail without writing.
  size_t inline_limit = 0;
  int fail_inline_errno = 0;
  size_t inline_writes = 0;  // inline writes done (or failed)
  size_t inline_write_limit() const override { return inline_limit; }
  int write_now(int fd, const void* data, size_t len, uint64_t offset) override {
    ++inline_writes;
    if (fail_inline_errno) {
      int e = fail_inline_errno;
      fail_inline_errno = 0;
      return -e;
    }
    int result = pwrite_all(fd, data, len, offset);
    if (result >= 0) {
      const std::string path = fd_path(fd);
      written_[path].insert({offset, offset + len});
      log_[path].push_back({offset, offset + len, false});
    }
    return result;
  }

  size_t held() const { return held_.size(); }
  const Held& at(size_t i) const { return held_[i]; }
  int find(Kind k) const {
    for (size_t i = 0; i < held_.size(); ++i)
      if (held_[i].kind == k) return static_cast<int>(i);
    return -1;
  }
  size_t count(Kind k) const {
    size_t n = 0;
    for (const auto& h : held_) n += h.kind == k;
    return n;
  }
  uint64_t issued(Kind k) const {
    auto it = issued_.find(k);
    return it == issued_.end() ? 0 : it->second;
  }
  // Runs and completes held operation i (or fails it with -err without running it).
  void complete(size_t i, int fail_errno = 0) {
    Held h = std::move(held_[i]);
    held_.erase(held_.begin() + static_cast<long>(i));
    int result = 0;
    if (fail_errno) {
      result = -fail_errno;
    } else if (h.kind == Kind::kWrite) {
      result = pwrite_all(h.fd, h.wdata, h.len, h.offset);
      if (result >= 0) {
        written_[h.path].insert({h.offset, h.offset + h.len});
        log_[h.path].push_back({h.offset, h.offset + h.len, false});
      }
    } else if (h.kind == Kind::kWriteDurable) {
      result = pwrite_all(h.fd, h.wdata, h.len, h.offset, RWF_DSYNC);
      if (result >= 0) {
        written_[h.path].insert({h.offset, h.offset + h.len});
        log_[h.path].push_back({h.offset, h.offset + h.len, true});
        if (h.offset <= durable_[h.path]) durable_[h.path] = std::max(durable_[h.path], h.offset + h.len);
      }
    } else if (h.kind == Kind::kRead) {
      result = pread_all(h.fd, h.rdata, h.len, h.offset);
    } else if (h.kind == Kind::kDatasync) {
      result = ::fdatasync(h.fd) == 0 ? 0 : -errno;
      if (result == 0) {
        durable_[h.path] = std::max(durable_[h.path], h.covers);
        for (size_t w = 0; w < h.writes_done; ++w) log_[h.path][w].durable = true;
      }
    } else {
      result = ::fsync(h.fd) == 0 ? 0 : -errno;
      if (result == 0) durable_entries_.insert(h.entries.begin(), h.entries.end());
    }
    h.op->complete(result);
  }
  bool complete_first(Kind k, int fail_errno = 0) {
    int i = find(k);
    if (i < 0) return false;
    complete(static_cast<size_t>(i), fail_errno);
    return true;
  }
  void complete_all() {
    while (!held_.empty()) complete(0);
  }

  uint64_t durable_bytes(const std::string& path) const {
    auto it = durable_.find(path);
    return it == durable_.end() ? 0 : it->second;
  }
  // Overwrite-aware: every completed write touching [begin, end) was covered by a datasync issued
  // after it completed, and those writes cover the whole range (zeros written ahead, then data over
  // them, is durable only once the data's own write is synced).
  bool range_durable(const std::string& path, uint64_t begin, uint64_t end) const {
    auto it = log_.find(path);
    if (it == log_.end()) return begin == end;
    std::set<std::pair<uint64_t, uint64_t>> cover;
    for (const auto& w : it->second) {
      if (w.end <= begin || w.begin >= end) continue;
      if (!w.durable) return false;
      cover.insert({w.begin, w.end});
    }
    uint64_t at = begin;
    for (auto [b, e] : cover) {
      if (b > at) break;
      at = std::max(at, e);
    }
    return at >= end;
  }
  bool entry_durable(const std::string& path) const { return durable_entries_.count(path) > 0; }

 private:
  uint64_t written_prefix(const std::string& path) const {
    auto it = written_.find(path);
    if (it == written_.end()) return 0;
    uint64_t end = 0;
    for (auto [b, e] : it->second) {  // sorted by start
      if (b > end) break;
      end = std::max(end, e);
    }
    return end;
  }
  std::vector<Held> held_;                                              // in submit order
  std::map<Kind, uint64_t> issued_;                                     // operations submitted
  std::map<std::string, std::set<std::pair<uint64_t, uint64_t>>> written_;  // completed write ranges
  struct LoggedWrite {
    uint64_t begin, end;  // byte range
    bool durable;         // a datasync issued after it completed has completed
  };
  std::map<std::string, std::vector<LoggedWrite>> log_;                 // completed writes, in order
  std::map<std::string, uint64_t> durable_;                             // durable prefix per file
  std::set<std::string> durable_entries_;                               // durable directory entries
};

// Records commit callbacks; `check` runs inside the callback.
struct CommitRecorder final : CommitCallback {
  struct Call {
    QueueId id;  // record
    bool ok;     // status
    std::string error;  // message when !ok
  };
  std::vector<Call> calls;                          // in callback order
  std::function<void(QueueId, const Status&)> check;  // optional assertion hook
  void committed(QueueId id, Status status) override {
    if (check) check(id, status);
    calls.push_back({id, status.ok(), status.ok() ? "" : status.error().message()});
  }
  size_t ok_count() const {
    size_t n = 0;
    for (const auto& c : calls) n += c.ok;
    return n;
  }
};

inline StoredEnvelope make_envelope(QueueId id, size_t nrcpt, std::string from = "sender@example.org") {
  StoredEnvelope env;
  env.id = id;
  env.arrival = WallTime(std::chrono::milliseconds(1'700'000'000'123));
  env.mail_from = std::move(from);
  for (size_t i = 0; i < nrcpt; ++i) env.rcpts.push_back("rcpt" + std::to_string(i) + "@example.net");
  env.flags = kEnvelope8BitMime;
  env.client = "[192.0.2.1]:4321 mx.example.org";
  return env;
}

inline std::string make_body(size_t len, unsigned seed) {
  std::string body(len, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < len; ++i) {
    x = x * 1103515245u + 12345u;
    body[i] = static_cast<char>(x >> 24);
  }
  return body;
}

inline std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> out;
  if (!std::filesystem::exists(path)) return out;
  for (const auto& e : std::filesystem::directory_iterator(path)) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace ringmail::queue::testing
