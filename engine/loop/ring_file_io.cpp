// RingFileIo implementation (see ring_file_io.h).
#include "engine/loop/ring_file_io.h"

#include "common/log.h"

namespace ringmail::engine {

RingFileIo::~RingFileIo() {
  if (in_flight_ > 0) log::warn("file I/O torn down with {} operations in flight", in_flight_);
}

RingFileIo::Slot* RingFileIo::take() {
  if (!free_) {
    all_.push_back(std::make_unique<Slot>());
    all_.back()->io = this;
    give(all_.back().get());
  }
  Slot* s = free_;
  free_ = s->next_free;
  ++in_flight_;
  return s;
}

void RingFileIo::give(Slot* s) {
  s->next_free = free_;
  free_ = s;
}

void RingFileIo::submit(Slot& s) {
  io_uring_sqe* sqe = loop_.sqe_for(&s);
  switch (s.kind) {
    case Kind::kWrite:
    case Kind::kWriteDurable:
      io_uring_prep_write(sqe, s.fd, s.data + s.done, static_cast<unsigned>(s.len - s.done), s.offset + s.done);
      if (s.kind == Kind::kWriteDurable) sqe->rw_flags = RWF_DSYNC;
      break;
    case Kind::kRead:
      io_uring_prep_read(sqe, s.fd, s.data + s.done, static_cast<unsigned>(s.len - s.done), s.offset + s.done);
      break;
    case Kind::kDatasync:
      io_uring_prep_fsync(sqe, s.fd, IORING_FSYNC_DATASYNC);
      break;
    case Kind::kFsync:
      io_uring_prep_fsync(sqe, s.fd, 0);
      break;
  }
}

void RingFileIo::on_slot(Slot& s, int res) {
  if (res >= 0 && (s.kind == Kind::kWrite || s.kind == Kind::kWriteDurable || s.kind == Kind::kRead)) {
    if (res == 0 && s.kind == Kind::kRead && s.done < s.len) {
      res = -EIO;  // unexpected end of file
    } else {
      s.done += static_cast<size_t>(res);
      if (s.done < s.len) {  // short transfer: continue where it stopped
        submit(s);
        return;
      }
      res = static_cast<int>(std::min<size_t>(s.done, INT32_MAX));
    }
  }
  Op* op = s.op;
  --in_flight_;
  give(&s);
  op->complete(res);
}

void RingFileIo::start(Kind kind, int fd, char* data, size_t len, uint64_t offset, Op* op) {
  Slot* s = take();
  *s = Slot{};
  s->io = this;
  s->kind = kind;
  s->fd = fd;
  s->data = data;
  s->len = len;
  s->offset = offset;
  s->op = op;
  submit(*s);
}

void RingFileIo::write(int fd, const void* data, size_t len, uint64_t offset, Op* op) {
  start(Kind::kWrite, fd, const_cast<char*>(static_cast<const char*>(data)), len, offset, op);
}

void RingFileIo::write_durable(int fd, const void* data, size_t len, uint64_t offset, Op* op) {
  start(Kind::kWriteDurable, fd, const_cast<char*>(static_cast<const char*>(data)), len, offset, op);
}

void RingFileIo::read(int fd, void* data, size_t len, uint64_t offset, Op* op) {
  start(Kind::kRead, fd, static_cast<char*>(data), len, offset, op);
}

void RingFileIo::datasync(int fd, Op* op) { start(Kind::kDatasync, fd, nullptr, 0, 0, op); }

void RingFileIo::fsync(int fd, Op* op) { start(Kind::kFsync, fd, nullptr, 0, 0, op); }

}  // namespace ringmail::engine
