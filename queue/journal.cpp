// The delivery journal's lazy write/sync pipeline (format in record_format.h, replay in spool_scan.cpp).
#include "queue/journal.h"

#include <unistd.h>

#include <cstring>

#include "common/log.h"
#include "queue/queue_id.h"
#include "queue/record_format.h"

namespace ringmail::queue {

DeliveryJournal::DeliveryJournal(uint64_t id, int fd, uint64_t end, FileIo& io, const Clock& clock,
                                 std::chrono::milliseconds sync_interval)
    : id_(id), fd_(fd), end_(end), io_(io), clock_(clock), sync_interval_(sync_interval), last_sync_(clock.now()) {
  write_op_.self = this;
  sync_op_.self = this;
}

DeliveryJournal::~DeliveryJournal() {
  if (write_in_flight_ || sync_in_flight_)
    log::error("delivery journal {} destroyed with operations in flight; close() first", format_queue_id(id_));
  if (fd_ >= 0) ::close(fd_);
}

void DeliveryJournal::record(const DeliveryUpdate& update) {
  if (broken_ || closing_) return;  // already logged; at-least-once tolerates forgetting
  size_t at = staged_.size();
  staged_.resize(at + format::kJournalRecordSize);
  format::encode_journal_record(staged_.data() + at, update);
  ++appended_;
  ++stats_.records;
  if (!write_in_flight_) start_write();
}

void DeliveryJournal::start_write() {
  writing_.swap(staged_);
  staged_.clear();
  write_in_flight_ = true;
  io_.write(fd_, writing_.data(), writing_.size(), end_, &write_op_);
}

void DeliveryJournal::poll() {
  if (!write_in_flight_ && !staged_.empty() && !broken_) start_write();
  maybe_sync(false);
}

void DeliveryJournal::maybe_sync(bool force) {
  if (sync_in_flight_ || broken_ || written_ <= synced_) return;
  if (!force && clock_.now() - last_sync_ < sync_interval_) return;
  sync_in_flight_ = true;
  sync_covers_ = written_;
  last_sync_ = clock_.now();
  io_.datasync(fd_, &sync_op_);
}

void DeliveryJournal::on_write_done(int result) {
  write_in_flight_ = false;
  const uint64_t records = writing_.size() / format::kJournalRecordSize;
  if (result < 0) {
    // A hole or garbage now sits at end_: replay stops there, so later records would be lost
    // anyway. Stop writing; the engine should open a fresh journal (Spool::make_journal).
    log::error("delivery journal {}: write failed: {}; recent delivery state may be forgotten (resend, not loss)",
               format_queue_id(id_), std::strerror(-result));
    broken_ = true;
    staged_.clear();
  } else {
    end_ += writing_.size();
    written_ += records;
    ++stats_.writes;
    if (!staged_.empty()) start_write();
  }
  maybe_sync(closing_);
  maybe_finish_close();
}

void DeliveryJournal::on_sync_done(int result) {
  sync_in_flight_ = false;
  if (result < 0) {
    log::error("delivery journal {}: fdatasync failed: {}", format_queue_id(id_), std::strerror(-result));
    broken_ = true;
  } else {
    synced_ = sync_covers_;
    ++stats_.syncs;
  }
  maybe_sync(closing_);
  maybe_finish_close();
}

void DeliveryJournal::close(std::function<void()> done) {
  closing_ = true;
  close_done_ = std::move(done);
  if (!write_in_flight_ && !staged_.empty() && !broken_) start_write();
  maybe_sync(true);
  maybe_finish_close();
}

void DeliveryJournal::maybe_finish_close() {
  if (!closing_ || !close_done_ || write_in_flight_ || sync_in_flight_) return;
  if (!broken_ && (!staged_.empty() || written_ != synced_)) return;
  auto done = std::move(close_done_);
  close_done_ = nullptr;
  done();  // last statement: may destroy this journal
}

}  // namespace ringmail::queue
