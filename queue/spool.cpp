// Spool start-up (lock, recovery, cleanup, journal compaction), segment bookkeeping and reads.
#include "queue/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "queue/journal.h"
#include "queue/record_format.h"
#include "queue/spool_writer.h"

namespace ringmail::queue {
namespace {

Status make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    return make_error("spool: cannot create directory {}: {}", path, std::strerror(errno));
  return {};
}

Result<int> open_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_error("spool: cannot open directory {}: {}", path, std::strerror(errno));
  return fd;
}

Status sync_fd(int fd, const std::string& what) {
  if (::fsync(fd) != 0) return make_error("spool: fsync of {} failed: {}", what, std::strerror(errno));
  return {};
}

// Creates journal/<id>.jnl with a synced header; returns its descriptor and id. Blocking.
Result<std::pair<int, uint64_t>> create_journal_file(const std::string& dir, int jnl_dir_fd, unsigned writer_id,
                                                     uint64_t floor_ms, WallTime now) {
  QueueIdGenerator ids(writer_id, floor_ms);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    uint64_t id = ids.next(now);
    std::string path = journal_path(dir, id);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return make_error("spool: cannot create journal {}: {}", path, std::strerror(errno));
    }
    uint8_t header[format::kJournalHeaderSize];
    format::encode_journal_header(header, writer_id);
    int n = pwrite_all(fd, header, sizeof header, 0);
    if (n < 0 || ::fdatasync(fd) != 0) {
      int e = n < 0 ? -n : errno;
      ::close(fd);
      ::unlink(path.c_str());
      return make_error("spool: cannot write journal {}: {}", path, std::strerror(e));
    }
    if (auto s = sync_fd(jnl_dir_fd, journal_dir(dir)); !s.ok()) {
      ::close(fd);
      return s.error();
    }
    return std::pair<int, uint64_t>{fd, id};
  }
  return make_error("spool: cannot find a free journal name in {}", journal_dir(dir));
}

}  // namespace

Result<std::unique_ptr<Spool>> Spool::open(const SpoolOptions& options) {
  if (options.dir.empty()) return make_error("spool: no directory given");
  if (options.segment_size < 4096) return make_error("spool: segment_size {} is too small", options.segment_size);
  std::unique_ptr<Spool> spool(new Spool(options));
  const std::string& dir = options.dir;
  for (const auto& d : {dir, segment_dir(dir), journal_dir(dir)})
    if (auto s = make_dir(d); !s.ok()) return s.error();

  std::string lock_path = dir + "/lock";
  spool->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (spool->lock_fd_ < 0) return make_error("spool: cannot open {}: {}", lock_path, std::strerror(errno));
  if (::flock(spool->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char pid[32] = {};
    ssize_t n = ::pread(spool->lock_fd_, pid, sizeof pid - 1, 0);
    std::string holder = n > 0 ? fmt::format(" (pid {})", std::string_view(pid, static_cast<size_t>(n))) : "";
    if (e == EWOULDBLOCK)
      return make_error("spool: {} is in use by another ringmail process{}: lock {} is held", dir, holder, lock_path);
    return make_error("spool: cannot lock {}: {}", lock_path, std::strerror(e));
  }
  std::string me = std::to_string(::getpid());
  if (::ftruncate(spool->lock_fd_, 0) != 0 || pwrite_all(spool->lock_fd_, me.data(), me.size(), 0) < 0)
    log::warn("spool: cannot write pid to {}", lock_path);

  auto seg_fd = open_dir(segment_dir(dir));
  if (!seg_fd.ok()) return seg_fd.error();
  spool->seg_dir_fd_ = *seg_fd;
  auto jnl_fd = open_dir(journal_dir(dir));
  if (!jnl_fd.ok()) return jnl_fd.error();
  spool->jnl_dir_fd_ = *jnl_fd;

  if (auto s = spool->recover(); !s.ok()) return s.error();
  return spool;
}

Status Spool::recover() {
  const std::string& dir = options_.dir;
  auto snap = read_spool(dir);
  if (!snap.ok()) return snap.error();
  floor_ms_ = snap->max_id_ms;

  size_t torn = 0;
  for (const auto& s : snap->segments) {
    if (s.end == SegmentScan::End::kTorn) {
      ++torn;
      log::info("spool: segment {}: torn tail after {} records at offset {} ({}); dropped", format_queue_id(s.segment_id),
                s.records, s.valid_end, s.detail);
    }
  }
  // Segments without a live message go first (their deletion made durable), then the journals
  // that mention them can be compacted away.
  size_t deleted = 0;
  for (const auto& [id, live] : snap->live_per_segment) {
    if (live > 0) continue;
    std::string path = segment_path(dir, id);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return make_error("spool: cannot delete finished segment {}: {}", path, std::strerror(errno));
    ++deleted;
  }
  if (deleted > 0)
    if (auto s = sync_fd(seg_dir_fd_, segment_dir(dir)); !s.ok()) return s;
  if (auto s = compact_journals(*snap); !s.ok()) return s;

  for (const auto& [id, live] : snap->live_per_segment) {
    if (live == 0) continue;
    std::string path = segment_path(dir, id);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error("spool: cannot open {}: {}", path, std::strerror(errno));
    register_segment(id, fd, static_cast<int64_t>(live));
  }
  log::info("spool {}: recovered {} queued messages in {} segments ({} finished messages, {} segments deleted, "
            "{} torn tails)",
            dir, snap->live.size(), snap->segments.size() - deleted, snap->finished.size(), deleted, torn);
  recovered_ = std::move(snap->live);
  scans_ = std::move(snap->segments);
  return {};
}

// Writes a fresh journal holding only the state of messages whose segment survives (live ones, and
// finished ones sharing a segment with a live one: their final states must not be forgotten, or
// they would be delivered again), syncs it, then deletes the old
// journals. A crash in between leaves old and new journals side by side; replay merges them
// idempotently (merge_recipient_state), so nothing is lost either way.
Status Spool::compact_journals(const SpoolSnapshot& snap) {
  if (snap.journals.empty()) return {};
  const std::string& dir = options_.dir;
  std::vector<uint8_t> bytes;
  std::vector<const RecoveredMessage*> keep;
  for (const auto& m : snap.live) keep.push_back(&m);
  for (const auto& m : snap.finished)
    if (snap.live_per_segment.at(m.location.segment) > 0) keep.push_back(&m);
  for (const RecoveredMessage* mp : keep) {
    const RecoveredMessage& m = *mp;
    for (uint32_t i = 0; i < m.rcpts.size(); ++i) {
      const auto& r = m.rcpts[i];
      if (r.state == RcptState::kPending && r.attempts == 0 && r.flags == 0) continue;
      size_t at = bytes.size();
      bytes.resize(at + format::kJournalRecordSize);
      format::encode_journal_record(bytes.data() + at, {m.env.id, i, r.state, r.attempts, r.next_attempt, r.flags});
    }
  }
  if (!bytes.empty()) {
    auto made = create_journal_file(dir, jnl_dir_fd_, 0, floor_ms_, SystemClock::instance().wall());
    if (!made.ok()) return made.error();
    auto [fd, id] = *made;
    int n = pwrite_all(fd, bytes.data(), bytes.size(), format::kJournalHeaderSize);
    int e = n < 0 ? -n : (::fdatasync(fd) != 0 ? errno : 0);
    ::close(fd);
    if (e != 0) {
      ::unlink(journal_path(dir, id).c_str());
      return make_error("spool: cannot write compacted journal: {}", std::strerror(e));
    }
    floor_ms_ = std::max(floor_ms_, queue_id_ms(id));
  }
  for (const auto& j : snap.journals)
    if (::unlink(j.path.c_str()) != 0 && errno != ENOENT)
      return make_error("spool: cannot delete old journal {}: {}", j.path, std::strerror(errno));
  return sync_fd(jnl_dir_fd_, journal_dir(dir));
}

Spool::~Spool() {
  for (auto& [id, usage] : segments_)
    if (usage->read_fd >= 0) ::close(usage->read_fd);
  if (seg_dir_fd_ >= 0) ::close(seg_dir_fd_);
  if (jnl_dir_fd_ >= 0) ::close(jnl_dir_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<SpoolWriter>> Spool::make_writer(unsigned writer_id, FileIo& io, const Clock& clock) {
  if (writer_id > 255) return make_error("spool: writer id {} is out of range 0..255", writer_id);
  {
    std::lock_guard lock(mu_);
    if (writers_made_.test(writer_id)) return make_error("spool: writer {} already exists", writer_id);
    writers_made_.set(writer_id);
  }
  return std::unique_ptr<SpoolWriter>(new SpoolWriter(*this, writer_id, io, clock, floor_ms_));
}

Result<std::unique_ptr<DeliveryJournal>> Spool::make_journal(unsigned writer_id, FileIo& io, const Clock& clock) {
  if (writer_id > 255) return make_error("spool: writer id {} is out of range 0..255", writer_id);
  auto made = create_journal_file(options_.dir, jnl_dir_fd_, writer_id, floor_ms_, clock.wall());
  if (!made.ok()) return made.error();
  return std::unique_ptr<DeliveryJournal>(new DeliveryJournal(made->second, made->first, format::kJournalHeaderSize,
                                                              io, clock, options_.journal_sync_interval));
}

std::shared_ptr<SegmentUsage> Spool::register_segment(uint64_t id, int read_fd, int64_t refs) {
  auto usage = std::make_shared<SegmentUsage>();
  usage->id = id;
  usage->read_fd = read_fd;
  usage->refs.store(refs, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  segments_[id] = usage;
  return usage;
}

void Spool::drop_ref(SegmentUsage& usage) {
  if (usage.refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::lock_guard lock(mu_);
    empty_.push_back(usage.id);
  }
}

void Spool::release_message(const MessageLocation& loc) {
  std::shared_ptr<SegmentUsage> usage;
  {
    std::lock_guard lock(mu_);
    auto it = segments_.find(loc.segment);
    if (it == segments_.end()) {
      log::warn("spool: release of a message in unknown segment {}", format_queue_id(loc.segment));
      return;
    }
    usage = it->second;
  }
  drop_ref(*usage);
}

std::vector<uint64_t> Spool::empty_segments() const {
  std::lock_guard lock(mu_);
  return empty_;
}

size_t Spool::delete_empty_segments() {
  std::vector<std::shared_ptr<SegmentUsage>> doomed;
  {
    std::lock_guard lock(mu_);
    for (uint64_t id : empty_) {
      auto it = segments_.find(id);
      if (it == segments_.end()) continue;
      doomed.push_back(std::move(it->second));
      segments_.erase(it);
    }
    empty_.clear();
  }
  for (auto& usage : doomed) {
    if (usage->read_fd >= 0) ::close(usage->read_fd);
    usage->read_fd = -1;
    std::string path = segment_path(options_.dir, usage->id);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      log::error("spool: cannot delete finished segment {}: {}", path, std::strerror(errno));
  }
  if (!doomed.empty() && ::fsync(seg_dir_fd_) != 0)
    log::error("spool: fsync of {} failed: {}", segment_dir(options_.dir), std::strerror(errno));
  return doomed.size();
}

void Spool::read_message(const MessageLocation& loc, uint8_t* buffer, FileIo& io, FileIo::Op* op) {
  int fd = -1;
  {
    std::lock_guard lock(mu_);
    auto it = segments_.find(loc.segment);
    if (it != segments_.end()) fd = it->second->read_fd;
  }
  // An unknown segment becomes a read error on a closed descriptor, reported through op as usual.
  io.read(fd, buffer, loc.record_len, loc.offset, op);
}

Result<StoredMessage> Spool::read_message_blocking(const MessageLocation& loc) const {
  return queue::read_message_blocking(options_.dir, loc);
}

}  // namespace ringmail::queue
