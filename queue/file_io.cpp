// BlockingFileIo and the blocking pread/pwrite loops.
#include "queue/file_io.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

namespace ringmail::queue {

int pwrite_all(int fd, const void* data, size_t len, uint64_t offset, int rw_flags) {
  const char* p = static_cast<const char*>(data);
  size_t left = len;
  while (left > 0) {
    iovec iov{const_cast<char*>(p), left};
    ssize_t n = ::pwritev2(fd, &iov, 1, static_cast<off_t>(offset), rw_flags);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EIO;
    p += n;
    left -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return len > INT_MAX ? INT_MAX : static_cast<int>(len);
}

int pread_all(int fd, void* data, size_t len, uint64_t offset) {
  char* p = static_cast<char*>(data);
  size_t left = len;
  while (left > 0) {
    ssize_t n = ::pread(fd, p, left, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -ENODATA;
    p += n;
    left -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return len > INT_MAX ? INT_MAX : static_cast<int>(len);
}

int FileIo::write_now(int fd, const void* data, size_t len, uint64_t offset) {
  return pwrite_all(fd, data, len, offset);
}

void BlockingFileIo::write(int fd, const void* data, size_t len, uint64_t offset, Op* op) {
  done_.push_back({op, pwrite_all(fd, data, len, offset)});
}

void BlockingFileIo::read(int fd, void* data, size_t len, uint64_t offset, Op* op) {
  done_.push_back({op, pread_all(fd, data, len, offset)});
}

void BlockingFileIo::datasync(int fd, Op* op) { done_.push_back({op, ::fdatasync(fd) == 0 ? 0 : -errno}); }

void BlockingFileIo::write_durable(int fd, const void* data, size_t len, uint64_t offset, Op* op) {
  done_.push_back({op, pwrite_all(fd, data, len, offset, RWF_DSYNC)});
}

void BlockingFileIo::fsync(int fd, Op* op) { done_.push_back({op, ::fsync(fd) == 0 ? 0 : -errno}); }

size_t BlockingFileIo::drain() {
  size_t n = 0;
  while (!done_.empty()) {
    Done d = done_.front();
    done_.pop_front();
    d.op->complete(d.result);
    ++n;
  }
  return n;
}

}  // namespace ringmail::queue
