// Reading a spool directory without changing it: scanning segments and journals, rebuilding the
// set of queued messages, and reading one message back. Used by Spool::open (under the lock) and by
// ringmail-spool (no lock, while the daemon may be writing). All calls here block.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "queue/envelope.h"

namespace ringmail::queue {

// Layout of a spool directory.
std::string segment_dir(const std::string& dir);                // DIR/seg
std::string journal_dir(const std::string& dir);                // DIR/journal
std::string segment_path(const std::string& dir, uint64_t id);  // DIR/seg/<16 hex>.seg
std::string journal_path(const std::string& dir, uint64_t id);  // DIR/journal/<16 hex>.jnl

struct SegmentScan {
  enum class End {
    kEndOfFile,  // the last record ends exactly at the end of the file
    kZeroFill,   // the rest of the record area is unwritten (zero) preallocated space
    kTorn,       // a record with a bad magic, length or CRC: the scan stopped there
  };
  uint64_t segment_id = 0;      // from the file name
  std::string path;             // file scanned
  uint64_t file_size = 0;       // bytes in the file (preallocated space included)
  uint64_t records = 0;         // complete, checksum-valid records
  uint64_t valid_end = 0;       // offset just after the last valid record
  End end = End::kEndOfFile;    // why the scan stopped
  std::string detail;           // for kTorn: what was wrong
};

struct ScannedMessage {
  StoredEnvelope env;        // decoded envelope
  MessageLocation location;  // where the record is
};

// Scans one segment. Stops at the first record whose magic, lengths or CRC is wrong: everything
// from there on is treated as a torn tail (see docs/spool.md for why no acknowledged record can be
// behind it). A missing or all-zero file header means an empty segment; any other bad header is an
// error, because that file may hold mail we cannot read.
Result<SegmentScan> scan_segment(const std::string& path, std::vector<ScannedMessage>* out);

struct JournalScan {
  std::string path;      // file scanned
  uint64_t records = 0;  // valid records
  bool torn = false;     // stopped before the end of the file
};
Result<JournalScan> scan_journal(const std::string& path, std::vector<DeliveryUpdate>* out);

struct RecoveredMessage {
  StoredEnvelope env;                   // as accepted
  MessageLocation location;             // record position, for read_message
  std::vector<RecipientState> rcpts;    // one per env.rcpts entry, journal replayed
  size_t pending_count() const;         // recipients not final
};

struct SpoolSnapshot {
  std::vector<RecoveredMessage> live;           // messages with at least one recipient not final
  std::vector<RecoveredMessage> finished;       // messages whose recipients are all final
  std::vector<SegmentScan> segments;            // every segment, in id order
  std::vector<JournalScan> journals;            // every journal, in id order
  std::map<uint64_t, uint64_t> live_per_segment;  // segment id -> live messages (0 = deletable)
  uint64_t max_id_ms = 0;                       // largest queue-id ms seen (ids, file names)
};

// Scans all segments and journals of DIR and replays the journals. Changes nothing on disk.
Result<SpoolSnapshot> read_spool(const std::string& dir);

struct StoredMessage {
  StoredEnvelope env;  // decoded envelope
  std::string body;    // message bytes as received (after dot-unstuffing)
};

// Checks and decodes a record read back from `loc` (header, lengths, CRC, id).
Result<StoredMessage> decode_message(const uint8_t* record, size_t len, const MessageLocation& loc);
// Opens the segment read-only and reads one message.
Result<StoredMessage> read_message_blocking(const std::string& dir, const MessageLocation& loc);

}  // namespace ringmail::queue
