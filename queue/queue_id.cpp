// Queue ID formatting, parsing and generation (see queue_id.h for the layout).
#include "queue/queue_id.h"

namespace ringmail::queue {

std::string format_queue_id(QueueId id) { return fmt::format("{:016X}", id); }

Result<QueueId> parse_queue_id(std::string_view text) {
  if (text.size() != 16) return make_error("queue id '{}' is not 16 hex digits", text);
  QueueId v = 0;
  for (char c : text) {
    unsigned d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return make_error("queue id '{}' is not 16 hex digits", text);
    v = (v << 4) | d;
  }
  return v;
}

uint64_t queue_id_epoch_ms(WallTime t) {
  int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() -
               kQueueIdEpochUnixSeconds * 1000;
  if (ms < 0) return 0;
  if (static_cast<uint64_t>(ms) > kQueueIdMaxMs) return kQueueIdMaxMs;
  return static_cast<uint64_t>(ms);
}

WallTime queue_id_time(QueueId id) {
  auto ms = std::chrono::milliseconds(kQueueIdEpochUnixSeconds * 1000 + static_cast<int64_t>(queue_id_ms(id)));
  return WallTime(std::chrono::duration_cast<WallTime::duration>(ms));
}

QueueIdGenerator::QueueIdGenerator(unsigned writer_id, uint64_t floor_ms)
    : writer_id_(writer_id & 0xff), last_ms_(floor_ms), seq_(0xffff) {}

QueueId QueueIdGenerator::next(WallTime now) {
  uint64_t ms = queue_id_epoch_ms(now);
  if (ms > last_ms_) {
    last_ms_ = ms;
    seq_ = 0;
  } else if (seq_ < 0xffff) {
    ++seq_;
  } else {
    ++last_ms_;  // 65536 IDs in one ms (or a clock behind the floor): borrow the next ms
    seq_ = 0;
  }
  return make_queue_id(last_ms_, writer_id_, seq_);
}

}  // namespace ringmail::queue
