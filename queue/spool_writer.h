// SpoolWriter: one per worker thread; appends accepted messages to that thread's segment file with
// group commit. Two ways to commit, chosen per segment (docs/spool.md):
//  - direct (SpoolOptions::direct_io, where the file system has O_DIRECT): ONE durable write in flight
//    (FileIo::write_durable, RWF_DSYNC) carrying every staged batch, padded to the direct-I/O block
//    size; it starts at the block holding the segment's end, rewriting that block's bytes already
//    on disk unchanged. A record is acknowledged when the write that carried it has completed.
//  - buffered (default): at most ONE write (a whole batch, contiguous at the segment end; small batches are
//    written inline between datasyncs, see kick()) and ONE datasync in flight; a record is
//    acknowledged only after a datasync issued after its write completed has completed.
// Either way, for a new segment the directory fsync must have completed too. Writes are serial and
// contiguous, so acknowledged records always form a prefix of the segment: a torn record can only
// be followed by unacknowledged data, and recovery may stop at the first bad record without losing
// an acknowledged message.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "queue/envelope.h"
#include "queue/file_io.h"
#include "queue/queue_id.h"

namespace ringmail::queue {

class Spool;
struct SegmentUsage;

class CommitCallback {  // owned by the caller; must stay alive until called
 public:
  virtual void committed(QueueId id, Status status) = 0;  // on the writer's thread
 protected:
  ~CommitCallback() = default;
};

class SpoolWriter {  // not thread-safe; all callbacks on the writer's thread
 public:
  ~SpoolWriter();  // close() must have finished (no operation in flight)
  SpoolWriter(const SpoolWriter&) = delete;
  SpoolWriter& operator=(const SpoolWriter&) = delete;

  QueueId next_id();  // unique across writers and restarts (time-based + writer id)
  // Serialises the record (copies envelope and body) and queues it for the next write batch.
  // cb->committed() runs later, never inside append(): Status ok = durable (send 250); an error
  // = not acknowledged (send 451). The returned location is valid once committed ok.
  // Opening a new segment (open O_EXCL + fallocate) happens here and blocks briefly, once per
  // segment_size bytes; everything else goes through FileIo.
  MessageLocation append(const StoredEnvelope& env, std::string_view body, CommitCallback* cb);
  // Stops taking appends, writes and syncs everything pending; `done` runs after the last
  // callback, as the last thing the writer does in that call (it may destroy the writer), or
  // inside close() if nothing is pending. Appends after close() fail.
  void close(std::function<void()> done);
  size_t pending() const { return records_.size(); }  // appended, callback not yet run

  struct Stats {
    uint64_t batches = 0;        // write operations completed
    uint64_t syncs = 0;          // commits completed (datasyncs, or durable direct writes)
    uint64_t records = 0;        // records acknowledged ok
    uint64_t failed = 0;         // records failed (callback with error)
    uint64_t bytes = 0;          // bytes written
    uint64_t segments = 0;       // segments created
    uint64_t direct_segments = 0;  // segments committed with direct I/O
    uint64_t sync_ns_sum = 0;    // sum of commit latencies (Clock::now)
    uint64_t sync_ns_max = 0;    // worst commit latency
  };
  Stats stats() const { return stats_; }

 private:
  friend class Spool;
  SpoolWriter(Spool& spool, unsigned writer_id, FileIo& io, const Clock& clock, uint64_t id_floor_ms);

  struct Segment;
  // Calls a member function of T when the operation completes.
  template <typename T>
  struct Hook final : FileIo::Op {
    T* self = nullptr;                  // object to call
    void (T::*fn)(int) = nullptr;       // what to call
    void complete(int result) override { (self->*fn)(result); }
  };
  struct Batch {
    Segment* seg = nullptr;      // segment written to
    uint64_t offset = 0;         // where the batch starts in the segment
    std::vector<uint8_t> bytes;  // framed records (and the segment header for a new segment)
  };
  struct PendingRecord {
    QueueId id = 0;                 // message
    CommitCallback* cb = nullptr;   // who to tell
    Segment* seg = nullptr;         // nullptr if it never got a segment
    uint64_t end = 0;               // offset just past the record in seg
    bool failed = false;            // callback gets `error`
    std::string error;              // why it failed
  };

  Segment* segment_for(uint64_t record_bytes, std::string* error);
  Segment* create_segment(uint64_t capacity, std::string* error);
  void seal(Segment* seg);
  void kick();                       // issue the next write and sync if allowed
  void write_direct();               // one durable write of the staged batches of the front segment
  void on_direct_done(int result);
  void open_direct(Segment* seg, const std::string& path);  // O_DIRECT descriptor, if supported
  void observe_commit(MonoTime started);
  void on_write_done(int result);
  void finish_write(Batch& b, int result);  // a batch's write completed (inline or not)
  void recycle(std::vector<uint8_t> bytes);  // keep a batch buffer for reuse
  void on_sync_done(int result);
  void on_nudge_done(int result);
  void on_dir_synced(Segment* seg, int result);
  void fail_segment(Segment* seg, uint64_t from, const std::string& why);
  void deliver_callbacks();          // ack/fail the ready prefix, retire segments, maybe finish close
  void retire_segments();
  void ensure_progress();            // a completion will come to deliver pending failures
  bool busy() const;                 // any operation in flight

  Spool& spool_;
  FileIo& io_;
  const Clock& clock_;
  QueueIdGenerator ids_;
  std::deque<std::unique_ptr<Segment>> segments_;   // oldest first; segments still referenced
  Segment* active_ = nullptr;                        // segment new records go to
  std::deque<Batch> staged_;                         // batches waiting to be written, in order
  Batch in_flight_;                                  // the write in flight (direct: bytes in direct_buf_)
  std::vector<std::vector<uint8_t>> spare_;          // reusable batch buffers
  std::deque<PendingRecord> records_;                // appended, not yet called back, in order
  bool write_in_flight_ = false;                     // at most one write
  bool sync_in_flight_ = false;                      // at most one datasync
  bool nudge_in_flight_ = false;                     // directory fsync used only to deliver failures
  Segment* sync_seg_ = nullptr;                      // segment of the datasync in flight
  uint64_t sync_covers_ = 0;                         // written_end of sync_seg_ when the sync was issued
  MonoTime sync_started_;                            // for latency stats
  int delivering_ = 0;                               // depth of deliver_callbacks (re-entrancy)
  bool closing_ = false;                             // close() called
  bool closed_ = false;                              // close finished
  std::function<void()> close_done_;                 // close() callback
  uint64_t direct_end_ = 0;                          // segment offset the direct write makes durable
  MonoTime direct_started_;                          // for latency stats
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, FreeDeleter> direct_buf_;  // aligned source of the direct write
  size_t direct_cap_ = 0;                            // its size
  bool direct_off_ = false;                          // direct I/O disabled (option, unsupported, EINVAL)
  Hook<SpoolWriter> write_op_, sync_op_, nudge_op_, direct_op_;  // completion objects
  Stats stats_;
};

}  // namespace ringmail::queue
