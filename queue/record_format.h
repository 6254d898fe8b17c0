// The on-disk byte format of spool segments and delivery journals (little-endian, 8-byte aligned).
// Encoding and checking only; reading files is in spool_scan.h, writing in spool_writer.h/journal.h.
// The durability argument that relies on this framing is in docs/spool.md.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "queue/envelope.h"

namespace ringmail::queue::format {

static_assert(std::endian::native == std::endian::little, "the spool format is written in host order");

// Segment file header, 32 bytes:
//   0 magic "RMSEG001" | 8 version u32 | 12 writer id u32 | 16 segment id u64 | 24 reserved u32 | 28 crc u32
inline constexpr char kSegmentMagic[8] = {'R', 'M', 'S', 'E', 'G', '0', '0', '1'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kSegmentHeaderSize = 32;

// Record header, 32 bytes, followed by envelope, body and zero padding to 8 bytes:
//   0 magic u32 | 4 type u8 | 5 flags u8 | 6 reserved u16 | 8 envelope_len u32 | 12 crc u32
//   16 body_len u64 | 24 queue id u64
// crc = CRC-32C over the 32 header bytes with the crc field zero, then envelope and body.
inline constexpr uint32_t kRecordMagic = 0x4352'4D52;  // "RMRC" in file byte order
inline constexpr size_t kRecordHeaderSize = 32;
inline constexpr uint32_t kMaxEnvelopeLen = 16u << 20;  // larger means a corrupt header
enum class RecordType : uint8_t { kMessage = 1 };

// Journal file header, 16 bytes: 0 magic "RMJNL001" | 8 version u32 | 12 writer id u32.
inline constexpr char kJournalMagic[8] = {'R', 'M', 'J', 'N', 'L', '0', '0', '1'};
inline constexpr size_t kJournalHeaderSize = 16;
// Journal record, 40 bytes:
//   0 magic u32 | 4 state u8 | 5 flags u8 (kRcpt*) | 6..8 reserved | 8 rcpt u32 | 12 attempts u32 | 16 queue id u64
//   24 next attempt (ms since Unix epoch) i64 | 32 crc u32 (over bytes 0..32) | 36 zero u32
inline constexpr uint32_t kJournalRecordMagic = 0x524A'4D52;  // "RMJR"
inline constexpr size_t kJournalRecordSize = 40;

struct SegmentHeader {
  unsigned writer_id = 0;  // writer that created the segment
  uint64_t segment_id = 0; // same as the file name
};

struct RecordHeader {
  RecordType type = RecordType::kMessage;  // only messages so far
  uint8_t flags = 0;                       // reserved, 0
  uint32_t envelope_len = 0;               // bytes of encoded envelope
  uint32_t crc = 0;                        // as stored
  uint64_t body_len = 0;                   // bytes of body
  QueueId id = 0;                          // message id (also inside the envelope)
};

constexpr uint64_t align8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }
constexpr uint64_t record_size(uint64_t envelope_len, uint64_t body_len) {
  return align8(kRecordHeaderSize + envelope_len + body_len);
}

void encode_segment_header(uint8_t out[kSegmentHeaderSize], unsigned writer_id, uint64_t segment_id);
Result<SegmentHeader> decode_segment_header(const uint8_t* data, size_t len);

size_t encoded_envelope_size(const StoredEnvelope& env);
// Appends one complete framed record (header, envelope, body, padding) to out.
void append_message_record(std::vector<uint8_t>& out, const StoredEnvelope& env, std::string_view body);

// True if all 32 bytes are zero: preallocated space that was never written.
bool is_zero_header(const uint8_t* data);
// Checks magic, type and the envelope length bound. Does not check the CRC.
bool decode_record_header(const uint8_t* data, RecordHeader* out);
// Checks the CRC of a record given its header bytes and its payload (envelope + body).
bool record_crc_ok(const uint8_t* header_bytes, const uint8_t* payload, uint64_t payload_len);
Result<StoredEnvelope> decode_envelope(const uint8_t* data, size_t len);

void encode_journal_header(uint8_t out[kJournalHeaderSize], unsigned writer_id);
bool journal_header_ok(const uint8_t* data, size_t len);
void encode_journal_record(uint8_t out[kJournalRecordSize], const DeliveryUpdate& u);
bool decode_journal_record(const uint8_t* data, DeliveryUpdate* out);  // false: bad magic/crc/state

}  // namespace ringmail::queue::format
