// The per-thread group-commit pipeline (contract and durability argument in spool_writer.h and
// docs/spool.md). Invariants kept here:
//   - batches of one segment are written in order, contiguous, one at a time;
//   - a datasync covers exactly the bytes whose write had completed when it was issued;
//   - a direct segment's durable write covers exactly the bytes it carries (RWF_DSYNC); its
//     written_end and synced_end move together;
//   - a record is acknowledged when its segment's directory entry is synced and synced_end >= end;
//   - callbacks run in append order (records_ is a FIFO), so acknowledgements form a prefix;
//   - after a failed write or sync a segment takes no more records: its unsynced records fail.
#include "queue/spool_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/log.h"
#include "queue/record_format.h"
#include "queue/spool.h"

namespace ringmail::queue {

struct SpoolWriter::Segment {
  uint64_t id = 0;                       // file seg/<16 hex>.seg
  int fd = -1;                           // O_RDWR descriptor
  int dfd = -1;                          // O_RDWR | O_DIRECT descriptor, -1 = buffered commits
  size_t align = 0;                      // direct I/O offset and length alignment
  std::vector<uint8_t> tail;             // direct: bytes [written_end rounded down to align, written_end)
  uint64_t capacity = 0;                 // preallocated bytes
  uint64_t staged_end = 0;               // bytes given to records (and the header)
  uint64_t written_end = 0;              // bytes whose write completed
  uint64_t synced_end = 0;               // bytes covered by a completed datasync
  bool dir_synced = false;               // directory entry durable
  bool dir_sync_in_flight = false;       // directory fsync issued, not completed
  bool failed = false;                   // a write or sync failed: no more records here
  bool sealed = false;                   // no more appends (writer bias dropped)
  std::shared_ptr<SegmentUsage> usage;   // live-message count shared with the Spool
  SpoolWriter* writer = nullptr;         // owner, for the directory-sync completion
  Hook<Segment> dir_op;                  // directory fsync completion
  void on_dir(int result) { writer->on_dir_synced(this, result); }
};

SpoolWriter::SpoolWriter(Spool& spool, unsigned writer_id, FileIo& io, const Clock& clock, uint64_t id_floor_ms)
    : spool_(spool), io_(io), clock_(clock), ids_(writer_id, id_floor_ms) {
  write_op_.self = sync_op_.self = nudge_op_.self = direct_op_.self = this;
  write_op_.fn = &SpoolWriter::on_write_done;
  direct_op_.fn = &SpoolWriter::on_direct_done;
  direct_off_ = !spool.options().direct_io;
  if (direct_off_) log::info("spool writer {}: commits are buffered writes + fdatasync", writer_id);
  sync_op_.fn = &SpoolWriter::on_sync_done;
  nudge_op_.fn = &SpoolWriter::on_nudge_done;
}

SpoolWriter::~SpoolWriter() {
  if (busy() || !records_.empty())
    log::error("spool writer {} destroyed with {} records pending and operations in flight; close() first",
               ids_.writer_id(), records_.size());
  for (auto& seg : segments_) {
    if (!seg->sealed) seal(seg.get());
    if (seg->fd >= 0) ::close(seg->fd);
    if (seg->dfd >= 0) ::close(seg->dfd);
  }
  std::lock_guard lock(spool_.mu_);
  spool_.writers_made_.reset(ids_.writer_id());
}

void SpoolWriter::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

QueueId SpoolWriter::next_id() { return ids_.next(clock_.wall()); }

bool SpoolWriter::busy() const {
  if (write_in_flight_ || sync_in_flight_ || nudge_in_flight_) return true;
  return std::any_of(segments_.begin(), segments_.end(), [](const auto& s) { return s->dir_sync_in_flight; });
}

MessageLocation SpoolWriter::append(const StoredEnvelope& env, std::string_view body, CommitCallback* cb) {
  if (closing_) {
    records_.push_back({env.id, cb, nullptr, 0, true, "spool writer is closing"});
    ensure_progress();
    return {};
  }
  const uint64_t env_len = format::encoded_envelope_size(env);
  const uint64_t size = format::record_size(env_len, body.size());
  std::string error;
  Segment* seg = segment_for(size, &error);
  if (!seg) {
    records_.push_back({env.id, cb, nullptr, 0, true, std::move(error)});
    ensure_progress();
    return {};
  }
  if (staged_.empty() || staged_.back().seg != seg ||
      (!staged_.back().bytes.empty() && staged_.back().bytes.size() + size > spool_.options().max_batch_bytes)) {
    Batch b{seg, seg->staged_end, {}};
    if (!spare_.empty()) {
      b.bytes = std::move(spare_.back());
      spare_.pop_back();
      b.bytes.clear();
    }
    staged_.push_back(std::move(b));
  }
  format::append_message_record(staged_.back().bytes, env, body);
  MessageLocation loc{seg->id, seg->staged_end, static_cast<uint32_t>(env_len), body.size(), size};
  seg->staged_end += size;
  seg->usage->refs.fetch_add(1, std::memory_order_relaxed);
  records_.push_back({env.id, cb, seg, seg->staged_end, false, {}});
  kick();
  return loc;
}

SpoolWriter::Segment* SpoolWriter::segment_for(uint64_t record_bytes, std::string* error) {
  if (active_ && !active_->failed && active_->staged_end + record_bytes <= active_->capacity) return active_;
  if (active_) seal(active_);
  active_ = nullptr;
  // A record bigger than segment_size gets a segment of its own size.
  uint64_t capacity = std::max<uint64_t>(spool_.options().segment_size, format::kSegmentHeaderSize + record_bytes);
  Segment* seg = create_segment(capacity, error);
  if (!seg) return nullptr;
  Batch header{seg, 0, {}};
  header.bytes.resize(format::kSegmentHeaderSize);
  format::encode_segment_header(header.bytes.data(), ids_.writer_id(), seg->id);
  seg->staged_end = format::kSegmentHeaderSize;
  staged_.push_back(std::move(header));
  active_ = seg;
  return seg;
}

// Blocking by design (see append()): open + fallocate run once per segment. Preallocating means
// later fdatasyncs need not journal a size change, and ENOSPC shows up here, not mid-batch.
SpoolWriter::Segment* SpoolWriter::create_segment(uint64_t capacity, std::string* error) {
  const uint64_t id = next_id();
  const std::string path = segment_path(spool_.options().dir, id);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = fmt::format("spool: cannot create {}: {}", path, std::strerror(errno));
    log::error("{}", *error);
    return nullptr;
  }
  // Whole 4 KiB blocks, so that a direct write padded to its alignment stays inside the file.
  const uint64_t file_size = (capacity + 4095) / 4096 * 4096;
  if (::fallocate(fd, 0, 0, static_cast<off_t>(file_size)) != 0) {
    int e = errno;
    if (e != EOPNOTSUPP || ::ftruncate(fd, static_cast<off_t>(file_size)) != 0) {
      *error = fmt::format("spool: cannot preallocate {} bytes for {}: {}", capacity, path, std::strerror(e));
      log::error("{}", *error);
      ::close(fd);
      ::unlink(path.c_str());
      return nullptr;
    }
  }
  int read_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (read_fd < 0) {
    *error = fmt::format("spool: cannot reopen {}: {}", path, std::strerror(errno));
    log::error("{}", *error);
    ::close(fd);
    ::unlink(path.c_str());
    return nullptr;
  }
  auto seg = std::make_unique<Segment>();
  seg->id = id;
  seg->fd = fd;
  seg->capacity = capacity;
  if (!direct_off_) open_direct(seg.get(), path);
  seg->usage = spool_.register_segment(id, read_fd, 1);  // +1: this writer still appends
  seg->writer = this;
  seg->dir_op.self = seg.get();
  seg->dir_op.fn = &Segment::on_dir;
  // The directory entry must be durable before any record in the file is acknowledged.
  seg->dir_sync_in_flight = true;
  io_.fsync(spool_.segment_dir_fd(), &seg->dir_op);
  ++stats_.segments;
  segments_.push_back(std::move(seg));
  return segments_.back().get();
}

// Direct I/O needs the file system's support and its alignment (statx STATX_DIOALIGN, Linux 6.1+;
// without that answer, 4096 bytes, which every common device accepts).
void SpoolWriter::open_direct(Segment* seg, const std::string& path) {
  int dfd = ::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  if (dfd < 0) {
    log::info("spool: {} does not support direct I/O ({}); committing with write + fdatasync",
              spool_.options().dir, std::strerror(errno));
    direct_off_ = true;
    return;
  }
  size_t align = 4096;
  struct statx sx {};
  if (::statx(dfd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) != 0) {
    align = std::max(sx.stx_dio_offset_align, sx.stx_dio_mem_align);
    if (align == 0 || (align & (align - 1)) != 0 || align > 65536) {
      log::info("spool: {} does not support direct I/O (alignment {}); committing with write + fdatasync",
                spool_.options().dir, align);
      ::close(dfd);
      direct_off_ = true;
      return;
    }
  }
  if (stats_.direct_segments == 0)
    log::info("spool writer {}: commits are O_DIRECT writes with RWF_DSYNC ({}-byte alignment)", ids_.writer_id(),
              align);
  seg->dfd = dfd;
  seg->align = align;
  ++stats_.direct_segments;
}

void SpoolWriter::seal(Segment* seg) {
  if (seg->sealed) return;
  seg->sealed = true;
  spool_.drop_ref(*seg->usage);
}

void SpoolWriter::kick() {
  if (!write_in_flight_ && !staged_.empty() && staged_.front().seg->dfd >= 0) write_direct();
  // Buffered segments: between datasyncs, small batches go into the page cache at once
  // (FileIo::write_now) and the datasync below covers them; while a datasync runs they wait, so
  // each sync has one cheap write ahead of it instead of several trips through a worker thread. Batches too big to write inline
  // (or every batch, if the FileIo has no inline writes) take the asynchronous path, which may
  // overlap a datasync.
  const size_t inline_limit = io_.inline_write_limit();
  bool wrote_inline = false;
  while (!write_in_flight_ && !sync_in_flight_ && !staged_.empty() && staged_.front().seg->dfd < 0 &&
         staged_.front().bytes.size() <= inline_limit) {
    Batch b = std::move(staged_.front());
    staged_.pop_front();
    int result = io_.write_now(b.seg->fd, b.bytes.data(), b.bytes.size(), b.offset);
    wrote_inline = true;
    finish_write(b, result);
  }
  if (!write_in_flight_ && !staged_.empty() && staged_.front().seg->dfd < 0 &&
      staged_.front().bytes.size() > inline_limit) {
    in_flight_ = std::move(staged_.front());
    staged_.pop_front();
    write_in_flight_ = true;
    io_.write(in_flight_.seg->fd, in_flight_.bytes.data(), in_flight_.bytes.size(), in_flight_.offset, &write_op_);
  }
  if (!sync_in_flight_) {
    for (auto& seg : segments_) {  // oldest first, so acknowledgements stay in order
      if (seg->failed || seg->written_end <= seg->synced_end) continue;
      sync_in_flight_ = true;
      sync_seg_ = seg.get();
      sync_covers_ = seg->written_end;  // only bytes whose write already completed
      sync_started_ = clock_.now();
      io_.datasync(seg->fd, &sync_op_);
      break;
    }
  }
  // A failed inline write fails its records; if nothing is in flight, make a completion come
  // that delivers those failures (callbacks never run inside append()).
  if (wrote_inline) ensure_progress();
}

void SpoolWriter::on_write_done(int result) {
  write_in_flight_ = false;
  Batch b = std::move(in_flight_);
  finish_write(b, result);
  kick();
  deliver_callbacks();
}

void SpoolWriter::finish_write(Batch& b, int result) {
  Segment* seg = b.seg;
  if (!seg->failed) {
    if (result < 0) {
      fail_segment(seg, b.offset,
                   fmt::format("spool: write of {} bytes to segment {} failed: {}", b.bytes.size(),
                               format_queue_id(seg->id), std::strerror(-result)));
    } else {
      seg->written_end = b.offset + b.bytes.size();
      ++stats_.batches;
      stats_.bytes += b.bytes.size();
    }
  }
  recycle(std::move(b.bytes));
}

void SpoolWriter::recycle(std::vector<uint8_t> bytes) {
  if (spare_.size() < 4 && bytes.capacity() <= 2 * spool_.options().max_batch_bytes) spare_.push_back(std::move(bytes));
}

// One write carries the segment's last partial block (already on disk; rewritten unchanged) and
// the staged batches after it, zero-padded to the alignment. The zeros are beyond every record, so
// a crash leaves what recovery already expects after the last record; the next write rewrites them.
void SpoolWriter::write_direct() {
  Segment* seg = staged_.front().seg;
  const size_t align = seg->align;
  const uint64_t start = seg->written_end - seg->tail.size();
  size_t len = seg->tail.size();
  size_t count = 0;
  for (const Batch& b : staged_) {
    if (b.seg != seg || (count > 0 && len + b.bytes.size() > spool_.options().max_batch_bytes)) break;
    len += b.bytes.size();
    ++count;
  }
  const size_t padded = (len + align - 1) / align * align;
  if (padded > direct_cap_) {
    const size_t mem_align = std::max<size_t>(align, 4096);
    const size_t cap = (std::max(padded, 2 * direct_cap_) + mem_align - 1) / mem_align * mem_align;
    direct_buf_.reset(static_cast<uint8_t*>(std::aligned_alloc(mem_align, cap)));
    direct_cap_ = direct_buf_ ? cap : 0;
    if (!direct_buf_) {
      fail_segment(seg, seg->synced_end, fmt::format("spool: out of memory for a {} byte write", padded));
      ensure_progress();
      return;
    }
  }
  uint8_t* p = direct_buf_.get();
  if (!seg->tail.empty()) std::memcpy(p, seg->tail.data(), seg->tail.size());
  size_t at = seg->tail.size();
  for (size_t i = 0; i < count; ++i) {
    Batch b = std::move(staged_.front());
    staged_.pop_front();
    std::memcpy(p + at, b.bytes.data(), b.bytes.size());
    at += b.bytes.size();
    recycle(std::move(b.bytes));
  }
  std::memset(p + at, 0, padded - at);
  in_flight_ = Batch{seg, start, {}};
  direct_end_ = start + at;
  write_in_flight_ = true;
  direct_started_ = clock_.now();
  io_.write_durable(seg->dfd, p, padded, start, &direct_op_);
}

void SpoolWriter::on_direct_done(int result) {
  write_in_flight_ = false;
  Segment* seg = in_flight_.seg;
  const uint64_t start = in_flight_.offset;
  in_flight_ = Batch{};
  observe_commit(direct_started_);
  if (!seg->failed) {
    if (result < 0) {
      if (result == -EINVAL && !direct_off_) {
        direct_off_ = true;
        log::error("spool: the file system rejected a direct I/O write; new segments use write + fdatasync");
      }
      fail_segment(seg, seg->synced_end,
                   fmt::format("spool: durable write of {} bytes to segment {} failed: {}", direct_end_ - start,
                               format_queue_id(seg->id), std::strerror(-result)));
    } else {
      const uint64_t tail_from = direct_end_ / seg->align * seg->align;
      const uint8_t* p = direct_buf_.get();
      seg->tail.assign(p + (tail_from - start), p + (direct_end_ - start));
      stats_.bytes += direct_end_ - seg->written_end;
      seg->written_end = seg->synced_end = direct_end_;
      ++stats_.batches;
      ++stats_.syncs;
    }
  }
  if (direct_cap_ > 2 * spool_.options().max_batch_bytes) {  // a huge message passed: give the memory back
    direct_buf_.reset();
    direct_cap_ = 0;
  }
  kick();
  deliver_callbacks();
}

void SpoolWriter::observe_commit(MonoTime started) {
  uint64_t ns = static_cast<uint64_t>(std::chrono::nanoseconds(clock_.now() - started).count());
  stats_.sync_ns_sum += ns;
  stats_.sync_ns_max = std::max(stats_.sync_ns_max, ns);
  if (spool_.options().sync_seconds) spool_.options().sync_seconds->observe(static_cast<double>(ns) / 1e9);
}

void SpoolWriter::on_sync_done(int result) {
  sync_in_flight_ = false;
  Segment* seg = sync_seg_;
  sync_seg_ = nullptr;
  observe_commit(sync_started_);
  if (!seg->failed) {
    if (result < 0) {
      // After a failed fdatasync the kernel may have dropped the dirty pages: retrying proves
      // nothing, so every record not yet covered by an earlier sync fails.
      fail_segment(seg, seg->synced_end,
                   fmt::format("spool: fdatasync of segment {} failed: {}", format_queue_id(seg->id),
                               std::strerror(-result)));
    } else {
      seg->synced_end = std::max(seg->synced_end, sync_covers_);
      ++stats_.syncs;
    }
  }
  kick();
  deliver_callbacks();
}

void SpoolWriter::on_dir_synced(Segment* seg, int result) {
  seg->dir_sync_in_flight = false;
  if (!seg->failed) {
    if (result < 0)
      fail_segment(seg, 0, fmt::format("spool: fsync of the segment directory failed: {}", std::strerror(-result)));
    else
      seg->dir_synced = true;
  }
  kick();
  deliver_callbacks();
}

void SpoolWriter::on_nudge_done(int) {
  nudge_in_flight_ = false;
  deliver_callbacks();
}

void SpoolWriter::fail_segment(Segment* seg, uint64_t from, const std::string& why) {
  log::error("{}; failing its unacknowledged records", why);
  seg->failed = true;
  for (auto& r : records_) {
    if (r.seg == seg && r.end > from && !r.failed) {
      r.failed = true;
      r.error = why;
    }
  }
  for (auto it = staged_.begin(); it != staged_.end();) {
    if (it->seg == seg) it = staged_.erase(it);
    else ++it;
  }
  if (active_ == seg) {
    seal(seg);
    active_ = nullptr;
  }
}

void SpoolWriter::ensure_progress() {
  if (busy()) return;  // a completion is coming and will deliver the callbacks
  nudge_in_flight_ = true;
  io_.fsync(spool_.segment_dir_fd(), &nudge_op_);
}

void SpoolWriter::deliver_callbacks() {
  ++delivering_;
  while (!records_.empty()) {
    PendingRecord& front = records_.front();
    if (!front.failed && !(front.seg->dir_synced && front.seg->synced_end >= front.end)) break;
    PendingRecord rec = std::move(front);
    records_.pop_front();
    if (rec.failed) {
      ++stats_.failed;
      if (rec.seg) spool_.drop_ref(*rec.seg->usage);
      rec.cb->committed(rec.id, Status(Error(std::move(rec.error))));
    } else {
      ++stats_.records;
      rec.cb->committed(rec.id, Status{});
    }
  }
  --delivering_;
  if (delivering_ > 0) return;
  retire_segments();
  if (closing_ && !closed_ && records_.empty() && !busy()) {
    closed_ = true;
    auto done = std::move(close_done_);
    if (done) done();  // last statement: `done` may destroy this writer
  }
}

void SpoolWriter::retire_segments() {
  while (!segments_.empty()) {
    Segment* seg = segments_.front().get();
    if (!seg->sealed || seg->dir_sync_in_flight || sync_seg_ == seg || (write_in_flight_ && in_flight_.seg == seg))
      return;
    if (std::any_of(staged_.begin(), staged_.end(), [&](const Batch& b) { return b.seg == seg; })) return;
    if (std::any_of(records_.begin(), records_.end(), [&](const PendingRecord& r) { return r.seg == seg; })) return;
    ::close(seg->fd);
    if (seg->dfd >= 0) ::close(seg->dfd);
    segments_.pop_front();
  }
}

void SpoolWriter::close(std::function<void()> done) {
  if (closing_) {
    log::warn("spool writer {}: close() called twice", ids_.writer_id());
    return;
  }
  closing_ = true;
  close_done_ = std::move(done);
  if (active_) seal(active_);
  active_ = nullptr;
  kick();
  if (delivering_ == 0 && records_.empty() && !busy()) {
    retire_segments();
    closed_ = true;
    auto d = std::move(close_done_);
    if (d) d();  // last statement: may destroy this writer
  }
}

}  // namespace ringmail::queue
