// FileIo: the asynchronous file operations the spool uses for every data write and sync, so the
// spool never blocks a loop thread. The engine implements it on its io_uring ring; BlockingFileIo
// (here) runs the system calls at once and queues the completions, for tests and tools.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace ringmail::queue {

// Completions are delivered later on the submitting thread, never from inside the submitting call.
class FileIo {
 public:
  struct Op {
    virtual void complete(int result) = 0;  // result >= 0 ok, < 0 = -errno
   protected:
    ~Op() = default;
  };
  virtual ~FileIo() = default;
  virtual void write(int fd, const void* data, size_t len, uint64_t offset, Op* op) = 0;  // all len bytes or error
  virtual void read(int fd, void* data, size_t len, uint64_t offset, Op* op) = 0;         // all len bytes or error
  virtual void datasync(int fd, Op* op) = 0;  // fdatasync
  // A write that completes only once its bytes are durable (RWF_DSYNC). The spool uses it on an
  // O_DIRECT descriptor with aligned data, offset and length: one operation per group commit.
  virtual void write_durable(int fd, const void* data, size_t len, uint64_t offset, Op* op) = 0;
  virtual void fsync(int fd, Op* op) = 0;     // full fsync (directories)

  // Optional synchronous write into the page cache, for writes up to inline_write_limit() bytes
  // (0 = this FileIo has none, the default). The spool writer uses it for small batches just
  // before the datasync that covers them, which saves a trip through a worker thread per batch.
  // Returns len or -errno, like pwrite_all.
  virtual size_t inline_write_limit() const { return 0; }
  virtual int write_now(int fd, const void* data, size_t len, uint64_t offset);
};

// Executes synchronously with pwrite/pread/fdatasync/fsync, queues the completions; drain() delivers.
class BlockingFileIo final : public FileIo {
 public:
  void write(int fd, const void* data, size_t len, uint64_t offset, Op* op) override;
  void read(int fd, void* data, size_t len, uint64_t offset, Op* op) override;
  void datasync(int fd, Op* op) override;
  void write_durable(int fd, const void* data, size_t len, uint64_t offset, Op* op) override;
  void fsync(int fd, Op* op) override;
  // Delivers queued completions, including those queued while delivering, until none is left.
  size_t drain();  // returns the number of completions delivered
  size_t queued() const { return done_.size(); }

 private:
  struct Done {
    Op* op;      // whose complete() to call
    int result;  // what to pass it
  };
  std::deque<Done> done_;  // FIFO of finished operations not yet delivered
};

// Blocking helpers shared by BlockingFileIo, recovery and the tool: loop over short transfers.
int pwrite_all(int fd, const void* data, size_t len, uint64_t offset, int rw_flags = 0);  // len or -errno
int pread_all(int fd, void* data, size_t len, uint64_t offset);         // len, or -errno (-ENODATA at EOF)

}  // namespace ringmail::queue
