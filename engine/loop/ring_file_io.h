// The spool's asynchronous file I/O (queue::FileIo) on a worker's io_uring ring: writes, reads,
// fdatasync and fsync run as ring operations, so group commit never waits for the device on the
// loop thread; small spool batches may instead be copied into the page cache inline (write_now).
// Short reads/writes are resubmitted until complete. Operation slots are pooled (no allocation
// in steady state).
#pragma once

#include <memory>
#include <vector>

#include "engine/loop/loop.h"
#include "queue/file_io.h"

namespace ringmail::engine {

class RingFileIo final : public queue::FileIo {
 public:
  explicit RingFileIo(Loop& loop) : loop_(loop) {}
  ~RingFileIo() override;

  void write(int fd, const void* data, size_t len, uint64_t offset, Op* op) override;
  void read(int fd, void* data, size_t len, uint64_t offset, Op* op) override;
  void datasync(int fd, Op* op) override;
  void write_durable(int fd, const void* data, size_t len, uint64_t offset, Op* op) override;
  void fsync(int fd, Op* op) override;
  // Small spool batches are written with pwrite on the loop thread (a copy into the page cache,
  // microseconds) rather than through io_uring's worker threads; fdatasync always goes through
  // the ring. Bigger writes stay asynchronous, so a large message never stalls the loop.
  static constexpr size_t kInlineWriteLimit = 256 << 10;
  size_t inline_write_limit() const override { return kInlineWriteLimit; }
  size_t in_flight() const { return in_flight_; }

 private:
  enum class Kind { kWrite, kWriteDurable, kRead, kDatasync, kFsync };
  struct Slot final : Completion {
    RingFileIo* io = nullptr;
    Kind kind = Kind::kWrite;     // what is being done
    int fd = -1;
    char* data = nullptr;         // write source / read target
    size_t len = 0;               // total bytes
    size_t done = 0;              // bytes completed so far (short transfers)
    uint64_t offset = 0;          // file offset of data[0]
    Op* op = nullptr;             // the caller's completion
    Slot* next_free = nullptr;    // pool free list
    void on_complete(const io_uring_cqe& cqe) override { io->on_slot(*this, cqe.res); }
  };

  void start(Kind kind, int fd, char* data, size_t len, uint64_t offset, Op* op);  // take a slot, submit
  Slot* take();
  void give(Slot* s);
  void submit(Slot& s);
  void on_slot(Slot& s, int res);

  Loop& loop_;
  std::vector<std::unique_ptr<Slot>> all_;  // every slot ever made (owned)
  Slot* free_ = nullptr;                    // free list
  size_t in_flight_ = 0;                    // slots in use
};

}  // namespace ringmail::engine
