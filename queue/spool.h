// The spool directory as a whole: the exclusive lock, recovery at start-up (scan, journal replay,
// deleting finished segments, journal compaction), the per-thread writers and journals, reading
// messages back, and the live-message counts that say when a segment file can be deleted.
// The per-thread group-commit pipeline is in spool_writer.h; the byte format in record_format.h.
#pragma once

#include <atomic>
#include <bitset>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/result.h"
#include "queue/envelope.h"
#include "queue/file_io.h"
#include "queue/spool_scan.h"

namespace ringmail::queue {

class SpoolWriter;
class DeliveryJournal;

struct SpoolOptions {
  std::string dir;                          // spool directory (created if missing, mode 0700)
  uint64_t segment_size = 64ull << 20;      // preallocated segment size; a bigger record gets its own segment
  size_t max_batch_bytes = 4ull << 20;      // cap of one write batch
  // true: commit with O_DIRECT writes that carry RWF_DSYNC (one operation per group commit) where
  // the file system supports direct I/O. Less CPU per commit, but the written messages are not in
  // the page cache, so delivering them reads them back from the device (docs/spool.md).
  // false (default): buffered writes + fdatasync.
  bool direct_io = false;
  std::chrono::milliseconds journal_sync_interval{100};  // delivery journal: at most this long unsynced
  metrics::Histogram* sync_seconds = nullptr;  // observes every group-commit fdatasync; null = none
};

// Shared between the Spool and the writer filling a segment. refs counts the segment's live
// messages plus one while a writer may still append; whoever brings it to zero queues the segment
// for deletion. Atomics because release_message() may run on any thread (not the acceptance path).
struct SegmentUsage {
  uint64_t id = 0;                // segment id
  int read_fd = -1;               // O_RDONLY descriptor for reading messages back
  std::atomic<int64_t> refs{0};   // live messages (+1 while a writer appends)
};

class Spool {
 public:
  using Recovered = RecoveredMessage;

  // Creates DIR if needed, takes the lock (a second process on the same DIR fails with a clear
  // error), recovers, deletes finished segments and compacts the journals. Blocking, start-up only.
  static Result<std::unique_ptr<Spool>> open(const SpoolOptions& options);
  ~Spool();  // all writers and journals must be gone (closed) first
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Messages with at least one recipient not final, in segment and offset order.
  const std::vector<Recovered>& recovered() const { return recovered_; }
  // Moves the recovered messages out (the engine turns them into its queues; keeping a second copy
  // would double the memory of a big queue).
  std::vector<Recovered> take_recovered() { return std::move(recovered_); }
  // What recovery found in each segment (records, torn tails), for logs.
  const std::vector<SegmentScan>& recovery_scans() const { return scans_; }

  // Creates the writer `writer_id` (0..255, once each). Call on the thread that will use it.
  Result<std::unique_ptr<SpoolWriter>> make_writer(unsigned writer_id, FileIo& io, const Clock& clock);
  // Creates a fresh delivery journal for `writer_id` (file created and synced here: blocking).
  Result<std::unique_ptr<DeliveryJournal>> make_journal(unsigned writer_id, FileIo& io, const Clock& clock);

  // Reads the record at `loc` into buffer (at least loc.record_len bytes) through io; when `op`
  // completes with >= 0, decode_message(buffer, loc.record_len, loc) checks and decodes it.
  // The message must not have been released. Thread-safe.
  void read_message(const MessageLocation& loc, uint8_t* buffer, FileIo& io, FileIo::Op* op);
  Result<StoredMessage> read_message_blocking(const MessageLocation& loc) const;

  // The engine says every recipient of the message at `loc` is final (journal written). When the
  // last message of a segment no writer appends to any more is released, the segment becomes
  // deletable. Thread-safe; takes a short mutex.
  void release_message(const MessageLocation& loc);
  std::vector<uint64_t> empty_segments() const;  // deletable segments, not yet deleted
  // Unlinks deletable segments and syncs the directory. Blocking: call it off the loop thread (or
  // accept a short stall on a housekeeping timer). Returns how many were deleted.
  size_t delete_empty_segments();

  const SpoolOptions& options() const { return options_; }

 private:
  friend class SpoolWriter;
  explicit Spool(SpoolOptions options) : options_(std::move(options)) {}
  Status recover();
  Status compact_journals(const SpoolSnapshot& snap);
  std::shared_ptr<SegmentUsage> register_segment(uint64_t id, int read_fd, int64_t refs);
  void drop_ref(SegmentUsage& usage);
  int segment_dir_fd() const { return seg_dir_fd_; }
  uint64_t id_floor_ms() const { return floor_ms_; }

  SpoolOptions options_;
  int lock_fd_ = -1;      // DIR/lock, flock(LOCK_EX) held while open
  int seg_dir_fd_ = -1;   // DIR/seg, for directory fsyncs
  int jnl_dir_fd_ = -1;   // DIR/journal, for directory fsyncs
  uint64_t floor_ms_ = 0; // new queue ids are above every id seen at recovery
  std::vector<Recovered> recovered_;   // see recovered()
  std::vector<SegmentScan> scans_;     // see recovery_scans()

  mutable std::mutex mu_;  // guards the members below
  std::unordered_map<uint64_t, std::shared_ptr<SegmentUsage>> segments_;  // live segments by id
  std::vector<uint64_t> empty_;        // refs reached zero, not yet deleted
  std::bitset<256> writers_made_;      // writer ids handed out
};

}  // namespace ringmail::queue
