// Recovery after a crash: a torn or corrupted last record (every byte offset), truncation at every
// offset, garbage after the tail and zeroed preallocated space all give exactly the complete
// records before the damage; a corrupted record in the middle stops the scan there (documented:
// no resynchronisation). Also an empty segment left by a crash right after creation, and a torn
// tail followed by zeros (preallocated or zero-filled space) at every offset.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "queue/record_format.h"
#include "queue/spool.h"
#include "queue/spool_scan.h"
#include "queue/spool_writer.h"
#include "test_support.h"

namespace ringmail::queue {
namespace {

using testing::CommitRecorder;
using testing::make_body;
using testing::make_envelope;
using testing::TempDir;

class RecoveryTest : public ::testing::Test {
 protected:
  // Writes `n` messages into one segment and closes the spool (as after a clean shutdown).
  void SetUp() override {
    auto spool = Spool::open(SpoolOptions{tmp_.spool(), 1 << 20});
    ASSERT_TRUE(spool.ok());
    BlockingFileIo io;
    ManualClock clock;
    auto w = (*spool)->make_writer(0, io, clock);
    ASSERT_TRUE(w.ok());
    CommitRecorder rec;
    for (int i = 0; i < 6; ++i) {
      StoredEnvelope env = make_envelope((*w)->next_id(), 1 + i);
      locs_.push_back((*w)->append(env, make_body(100 + 37 * i, i), &rec));
      ids_.push_back(env.id);
    }
    (*w)->close([] {});
    io.drain();
    ASSERT_EQ(rec.ok_count(), 6u);
    seg_path_ = segment_path(tmp_.spool(), locs_[0].segment);
    std::ifstream f(seg_path_, std::ios::binary);
    original_.assign(std::istreambuf_iterator<char>(f), {});
  }
  void write_file(const std::string& bytes) {
    std::ofstream f(seg_path_, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  // Recovered ids, read-only.
  std::vector<QueueId> recovered_ids() {
    auto snap = read_spool(tmp_.spool());
    EXPECT_TRUE(snap.ok()) << (snap.ok() ? "" : snap.error().message());
    std::vector<QueueId> ids;
    if (snap.ok())
      for (const auto& m : snap->live) ids.push_back(m.env.id);
    return ids;
  }
  std::vector<QueueId> first(size_t n) const { return {ids_.begin(), ids_.begin() + static_cast<long>(n)}; }
  uint64_t payload_end(size_t i) const {
    return locs_[i].offset + format::kRecordHeaderSize + locs_[i].envelope_len + locs_[i].body_len;
  }

  TempDir tmp_;
  std::vector<MessageLocation> locs_;
  std::vector<QueueId> ids_;
  std::string seg_path_;
  std::string original_;  // segment bytes after the clean run (preallocated: 1 MiB)
};

TEST_F(RecoveryTest, CleanSegmentWithZeroedPreallocatedSpace) {
  EXPECT_EQ(original_.size(), 1u << 20) << "segment is preallocated";
  EXPECT_EQ(recovered_ids(), ids_);
  auto scan = scan_segment(seg_path_, nullptr);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->end, SegmentScan::End::kZeroFill);
  EXPECT_EQ(scan->records, 6u);
}

TEST_F(RecoveryTest, EveryCorruptedByteOfTheLastRecordDropsExactlyIt) {
  const MessageLocation& last = locs_.back();
  for (uint64_t off = last.offset; off < payload_end(5); ++off) {
    std::string bad = original_;
    bad[off] = static_cast<char>(bad[off] ^ 0x5a);
    write_file(bad);
    ASSERT_EQ(recovered_ids(), first(5)) << "corrupted byte at offset " << off;
  }
}

TEST_F(RecoveryTest, TruncationAtEveryOffsetOfTheLastRecord) {
  const MessageLocation& last = locs_.back();
  for (uint64_t len = last.offset; len < last.offset + last.record_len; ++len) {
    write_file(original_.substr(0, len));
    ASSERT_EQ(recovered_ids(), first(5)) << "truncated to " << len;
  }
  write_file(original_.substr(0, last.offset + last.record_len));
  EXPECT_EQ(recovered_ids(), ids_) << "file ends exactly after the last record";
  auto scan = scan_segment(seg_path_, nullptr);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->end, SegmentScan::End::kEndOfFile);
}

// In preallocated (or zero-filled) space a torn write leaves a prefix of the record followed by
// zeros, not the end of the file: the same outcome as a truncation.
TEST_F(RecoveryTest, TornTailFollowedByZerosAtEveryOffset) {
  const MessageLocation& last = locs_.back();
  for (uint64_t keep = last.offset; keep < payload_end(5); ++keep) {  // the padding is zero anyway
    std::string bad = original_;
    std::fill(bad.begin() + static_cast<long>(keep), bad.begin() + static_cast<long>(last.offset + last.record_len), '\0');
    write_file(bad);
    ASSERT_EQ(recovered_ids(), first(5)) << "record torn after " << keep - last.offset << " bytes, zeros behind";
  }
  auto scan = scan_segment(seg_path_, nullptr);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->valid_end, last.offset);
}

TEST_F(RecoveryTest, GarbageAfterTheTailIsIgnored) {
  std::string bad = original_;
  uint64_t tail = locs_.back().offset + locs_.back().record_len;
  std::string junk = make_body(4096, 99);
  bad.replace(tail, junk.size(), junk);
  write_file(bad);
  EXPECT_EQ(recovered_ids(), ids_);
  auto scan = scan_segment(seg_path_, nullptr);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->end, SegmentScan::End::kTorn);
  EXPECT_EQ(scan->valid_end, tail);
}

TEST_F(RecoveryTest, ACorruptedMiddleRecordStopsTheScanThere) {
  std::string bad = original_;
  bad[locs_[2].offset + format::kRecordHeaderSize + 3] ^= 1;
  write_file(bad);
  EXPECT_EQ(recovered_ids(), first(2)) << "no resynchronisation past a bad record (by design)";
}

TEST_F(RecoveryTest, HalfWrittenRecordHeaderWithPlausibleLengthsIsNotAMessage) {
  // The header of a 7th record reached the disk but its payload did not (zeros): the CRC rejects it.
  std::string bad = original_;
  uint64_t tail = locs_.back().offset + locs_.back().record_len;
  bad.replace(tail, format::kRecordHeaderSize, original_.substr(locs_[0].offset, format::kRecordHeaderSize));
  write_file(bad);
  EXPECT_EQ(recovered_ids(), ids_);
}

TEST_F(RecoveryTest, OpenDropsTornTailAndStillAcceptsNewMail) {
  std::string bad = original_;
  bad[locs_.back().offset + 40] ^= 1;
  write_file(bad);
  auto spool = Spool::open(SpoolOptions{tmp_.spool(), 1 << 20});
  ASSERT_TRUE(spool.ok()) << spool.error().message();
  ASSERT_EQ((*spool)->recovered().size(), 5u);
  EXPECT_EQ((*spool)->recovery_scans()[0].end, SegmentScan::End::kTorn);
  // New mail goes to a new segment, never after a torn tail.
  BlockingFileIo io;
  ManualClock clock;
  auto w = (*spool)->make_writer(0, io, clock);
  ASSERT_TRUE(w.ok());
  CommitRecorder rec;
  StoredEnvelope env = make_envelope((*w)->next_id(), 1);
  MessageLocation loc = (*w)->append(env, "hello", &rec);
  (*w)->close([] {});
  io.drain();
  EXPECT_NE(loc.segment, locs_[0].segment);
  EXPECT_EQ(rec.ok_count(), 1u);
}

TEST(RecoveryEmptySegments, SegmentWithoutHeaderIsDeletedAndForeignHeaderIsAnError) {
  TempDir tmp;
  { ASSERT_TRUE(Spool::open(SpoolOptions{tmp.spool()}).ok()); }
  std::string crashed = segment_path(tmp.spool(), 0x0000000100000000);
  {
    std::ofstream f(crashed, std::ios::binary);
    f << std::string(4096, '\0');  // created and preallocated, header never reached the disk
  }
  {
    auto spool = Spool::open(SpoolOptions{tmp.spool()});
    ASSERT_TRUE(spool.ok()) << spool.error().message();
    EXPECT_TRUE((*spool)->recovered().empty());
  }
  EXPECT_FALSE(std::filesystem::exists(crashed)) << "an empty segment is cleaned up";
  {
    std::ofstream f(crashed, std::ios::binary);
    f << "this is not a spool segment but it has bytes in it....";
  }
  auto spool = Spool::open(SpoolOptions{tmp.spool()});
  ASSERT_FALSE(spool.ok());
  EXPECT_NE(spool.error().message().find("bad magic"), std::string::npos) << spool.error().message();
  EXPECT_TRUE(std::filesystem::exists(crashed)) << "a file we cannot read is never deleted";
}

// A stored arrival time outside what WallTime can hold (a format bug or damage the CRC did not
// catch) decodes to a clamped time instead of overflowing the conversion (undefined behaviour the
// UBSan build caught in tests/fuzz/spool_records_fuzz).
TEST(RecordFormat, ArrivalOutsideWallTimeRangeIsClamped) {
  for (int64_t ms : {INT64_MAX, INT64_MIN, int64_t{1'800'000'000'000}}) {
    StoredEnvelope env = make_envelope(7, 1);
    std::vector<uint8_t> rec;
    format::append_message_record(rec, env, "x");
    std::memcpy(rec.data() + format::kRecordHeaderSize + 8, &ms, 8);  // the arrival field
    format::RecordHeader h;
    ASSERT_TRUE(format::decode_record_header(rec.data(), &h));
    auto back = format::decode_envelope(rec.data() + format::kRecordHeaderSize, h.envelope_len);
    ASSERT_TRUE(back.ok()) << back.error().message();
    auto got = std::chrono::duration_cast<std::chrono::milliseconds>(back->arrival.time_since_epoch()).count();
    const int64_t limit =  // year 2262 with nanosecond time points
        std::chrono::duration_cast<std::chrono::milliseconds>(WallTime::duration::max()).count();
    EXPECT_EQ(got, ms == INT64_MAX ? limit : ms == INT64_MIN ? -limit : ms);
  }
}

}  // namespace
}  // namespace ringmail::queue
