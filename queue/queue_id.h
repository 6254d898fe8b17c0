// Queue IDs: 64-bit names for accepted messages, unique across writer threads and restarts.
// Layout: 40 bits of milliseconds since 2024-01-01 UTC | 8 bits writer id | 16 bits sequence.
// Shown to people (and in "250 queued as ID") as 16 upper-case hex digits.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"

namespace ringmail::queue {

using QueueId = uint64_t;

inline constexpr int64_t kQueueIdEpochUnixSeconds = 1704067200;  // 2024-01-01T00:00:00Z
inline constexpr uint64_t kQueueIdMaxMs = (1ull << 40) - 1;        // about 34 years after the epoch

constexpr uint64_t queue_id_ms(QueueId id) { return id >> 24; }
constexpr unsigned queue_id_writer(QueueId id) { return static_cast<unsigned>((id >> 16) & 0xff); }
constexpr unsigned queue_id_sequence(QueueId id) { return static_cast<unsigned>(id & 0xffff); }
constexpr QueueId make_queue_id(uint64_t ms, unsigned writer, unsigned seq) {
  return (ms << 24) | (static_cast<uint64_t>(writer & 0xff) << 16) | (seq & 0xffff);
}

std::string format_queue_id(QueueId id);          // 16 upper-case hex digits
Result<QueueId> parse_queue_id(std::string_view text);  // 16 hex digits, either case
WallTime queue_id_time(QueueId id);               // the millisecond the ID was made in

// Milliseconds since the queue-ID epoch for a wall time (clamped to the 40-bit range).
uint64_t queue_id_epoch_ms(WallTime t);

// Makes IDs for one writer. Time-based so IDs stay unique across restarts; 65536 IDs per ms, and a
// sequence overflow borrows the next millisecond. A clock that steps back keeps the last ms.
class QueueIdGenerator {
 public:
  // floor_ms: IDs made here are greater than every ID whose ms part is <= floor_ms.
  QueueIdGenerator(unsigned writer_id, uint64_t floor_ms);
  QueueId next(WallTime now);
  unsigned writer_id() const { return writer_id_; }

 private:
  unsigned writer_id_;  // 0..255
  uint64_t last_ms_;    // ms part of the last ID made
  uint32_t seq_;        // sequence of the last ID made in last_ms_
};

}  // namespace ringmail::queue
