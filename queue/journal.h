// DeliveryJournal: one per worker thread; appends small CRC-framed delivery-state records
// (message, recipient, delivered / failed / deferred, attempts, next attempt) through FileIo.
// Writes go out at once (page cache); the datasync is lazy, at most every sync interval, driven by
// poll(). At-least-once: a crash may forget a recent "delivered" and cause a resend, never a loss.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "common/clock.h"
#include "queue/envelope.h"
#include "queue/file_io.h"

namespace ringmail::queue {

class DeliveryJournal {  // not thread-safe; use on the thread that made it
 public:
  ~DeliveryJournal();  // close() must have finished
  DeliveryJournal(const DeliveryJournal&) = delete;
  DeliveryJournal& operator=(const DeliveryJournal&) = delete;

  // Queues one record; it is written right away if no write is in flight, else with the next one.
  void record(const DeliveryUpdate& update);
  // Call from a timer (about every sync interval): writes what is staged and, when the interval has
  // passed since the last sync, issues a datasync.
  void poll();
  // Writes and syncs everything, then runs `done` (last statement; inside close() if idle).
  void close(std::function<void()> done);

  uint64_t id() const { return id_; }  // file journal/<16 hex>.jnl
  uint64_t unsynced() const { return appended_ - synced_; }  // records not yet known durable
  bool broken() const { return broken_; }  // a write or sync failed; later records are dropped

  struct Stats {
    uint64_t records = 0;  // records queued
    uint64_t writes = 0;   // write operations completed
    uint64_t syncs = 0;    // datasyncs completed
  };
  Stats stats() const { return stats_; }

 private:
  friend class Spool;
  DeliveryJournal(uint64_t id, int fd, uint64_t end, FileIo& io, const Clock& clock,
                  std::chrono::milliseconds sync_interval);
  template <void (DeliveryJournal::*Fn)(int)>
  struct Hook final : FileIo::Op {
    DeliveryJournal* self = nullptr;  // journal to call
    void complete(int result) override { (self->*Fn)(result); }
  };
  void start_write();
  void maybe_sync(bool force);
  void on_write_done(int result);
  void on_sync_done(int result);
  void maybe_finish_close();

  uint64_t id_;                          // journal id (file name)
  int fd_;                               // O_RDWR descriptor
  uint64_t end_;                         // file offset of the next write
  FileIo& io_;
  const Clock& clock_;
  std::chrono::milliseconds sync_interval_;  // longest time a written record stays unsynced (with poll)
  std::vector<uint8_t> staged_;          // encoded records not yet written
  std::vector<uint8_t> writing_;         // the write in flight
  uint64_t appended_ = 0;                // records queued
  uint64_t written_ = 0;                 // records whose write completed
  uint64_t synced_ = 0;                  // records covered by a completed datasync
  uint64_t sync_covers_ = 0;             // written_ when the sync in flight was issued
  bool write_in_flight_ = false;         // at most one write
  bool sync_in_flight_ = false;          // at most one datasync
  bool broken_ = false;                  // see broken()
  bool closing_ = false;                 // close() called
  MonoTime last_sync_;                   // when the last sync was issued
  std::function<void()> close_done_;     // close() callback
  Hook<&DeliveryJournal::on_write_done> write_op_;  // completion objects
  Hook<&DeliveryJournal::on_sync_done> sync_op_;
  Stats stats_;
};

}  // namespace ringmail::queue
