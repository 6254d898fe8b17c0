// The per-thread group-commit pipeline (contract and durability argument in spool_writer.h and
// docs/spool.md). Invariants kept here:
//   - batches of one segment are written in order, contiguous, one at a time;
//   - a datasync covers exactly the bytes whose write had completed when it was issued;
//   - a record is acknowledged when its segment's directory entry is synced and synced_end >= end;
//   - callbacks run in append order (records_ is a FIFO), so acknowledgements form a prefix;
//   - after a failed write or sync a segment takes no more records: its unsynced records fail.
#include "queue/spool_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "queue/record_format.h"
#include "queue/spool.h"

namespace ringmail::queue {

struct SpoolWriter::Segment {
  uint64_t id = 0;                       // file seg/<16 hex>.seg
  int fd = -1;                           // O_RDWR descriptor
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
  write_op_.self = sync_op_.self = nudge_op_.self = this;
  write_op_.fn = &SpoolWriter::on_write_done;
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
  }
  std::lock_guard lock(spool_.mu_);
  spool_.writers_made_.reset(ids_.writer_id());
}

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
  if (::fallocate(fd, 0, 0, static_cast<off_t>(capacity)) != 0) {
    int e = errno;
    if (e != EOPNOTSUPP || ::ftruncate(fd, static_cast<off_t>(capacity)) != 0) {
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

void SpoolWriter::seal(Segment* seg) {
  if (seg->sealed) return;
  seg->sealed = true;
  spool_.drop_ref(*seg->usage);
}

void SpoolWriter::kick() {
  // Between datasyncs, small batches go into the page cache at once (FileIo::write_now) and the
  // datasync below covers them; while a datasync runs they wait, so each sync has one cheap write
  // ahead of it instead of several trips through a worker thread. Batches too big to write inline
  // (or every batch, if the FileIo has no inline writes) take the asynchronous path, which may
  // overlap a datasync.
  const size_t inline_limit = io_.inline_write_limit();
  bool wrote_inline = false;
  while (!write_in_flight_ && !sync_in_flight_ && !staged_.empty() &&
         staged_.front().bytes.size() <= inline_limit) {
    Batch b = std::move(staged_.front());
    staged_.pop_front();
    int result = io_.write_now(b.seg->fd, b.bytes.data(), b.bytes.size(), b.offset);
    wrote_inline = true;
    finish_write(b, result);
  }
  if (!write_in_flight_ && !staged_.empty() && staged_.front().bytes.size() > inline_limit) {
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
  if (spare_.size() < 4 && b.bytes.capacity() <= 2 * spool_.options().max_batch_bytes) spare_.push_back(std::move(b.bytes));
}

void SpoolWriter::on_sync_done(int result) {
  sync_in_flight_ = false;
  Segment* seg = sync_seg_;
  sync_seg_ = nullptr;
  uint64_t ns = static_cast<uint64_t>(std::chrono::nanoseconds(clock_.now() - sync_started_).count());
  stats_.sync_ns_sum += ns;
  stats_.sync_ns_max = std::max(stats_.sync_ns_max, ns);
  if (spool_.options().sync_seconds) spool_.options().sync_seconds->observe(static_cast<double>(ns) / 1e9);
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
