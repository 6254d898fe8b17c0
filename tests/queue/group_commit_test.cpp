// Group commit with a FileIo double that holds every completion: several appends share one
// datasync; committed() never runs before the datasync covering the record (issued after its
// write completed) and the directory fsync of a new segment; acks are a prefix; rotation; errors.
// GroupCommitTest covers buffered commits (write + fdatasync), DirectGroupCommitTest the direct
// ones (one O_DIRECT write with RWF_DSYNC per commit).
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "queue/spool.h"
#include "queue/spool_scan.h"
#include "queue/spool_writer.h"
#include "test_support.h"

namespace ringmail::queue {
namespace {

using testing::CommitRecorder;
using testing::HoldingFileIo;
using testing::make_body;
using testing::make_envelope;
using testing::TempDir;
using Kind = HoldingFileIo::Kind;

class GroupCommitTest : public ::testing::Test {
 protected:
  virtual bool direct() const { return false; }
  void SetUp() override {
    SpoolOptions options{tmp_.spool(), 16 << 10, 4 << 10};
    options.direct_io = direct();
    auto s = Spool::open(options);
    ASSERT_TRUE(s.ok()) << s.error().message();
    spool_ = std::move(*s);
    auto w = spool_->make_writer(1, io_, clock_);
    ASSERT_TRUE(w.ok());
    writer_ = std::move(*w);
    // The durability check every acknowledgement must pass.
    rec_.check = [this](QueueId id, const Status& st) {
      if (!st.ok()) return;
      const MessageLocation& loc = locations_.at(id);
      std::string path = segment_path(tmp_.spool(), loc.segment);
      EXPECT_GE(io_.durable_bytes(path), loc.offset + loc.record_len)
          << "acked " << format_queue_id(id) << " before a datasync covering its write completed";
      EXPECT_TRUE(io_.range_durable(path, loc.offset, loc.offset + loc.record_len))
          << "acked " << format_queue_id(id) << " before a datasync issued after its own write completed";
      EXPECT_TRUE(io_.entry_durable(path)) << "acked before the segment's directory entry was synced";
    };
  }
  QueueId append(size_t body_len) {
    StoredEnvelope env = make_envelope(writer_->next_id(), 2);
    locations_[env.id] = writer_->append(env, make_body(body_len, static_cast<unsigned>(env.id)), &rec_);
    order_.push_back(env.id);
    return env.id;
  }
  void random_run(unsigned seed);  // random appends and completions; every promise checked
  // After a segment failed: the next append goes to a fresh segment (not that of `in_failed`) and
  // is acknowledged.
  void expect_next_append_in_fresh_segment(QueueId in_failed) {
    const size_t n = rec_.calls.size();
    QueueId next = append(100);
    io_.complete_all();
    ASSERT_EQ(rec_.calls.size(), n + 1);
    EXPECT_EQ(rec_.calls[n].id, next);
    EXPECT_TRUE(rec_.calls[n].ok);
    EXPECT_NE(locations_[next].segment, locations_[in_failed].segment);
  }
  void close_writer() {
    bool done = false;
    writer_->close([&] { done = true; });
    io_.complete_all();
    EXPECT_TRUE(done);
    writer_.reset();
  }

  TempDir tmp_;
  HoldingFileIo io_;
  ManualClock clock_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<SpoolWriter> writer_;
  CommitRecorder rec_;
  std::map<QueueId, MessageLocation> locations_;
  std::vector<QueueId> order_;
};

TEST_F(GroupCommitTest, StepByStepPipeline) {
  QueueId a = append(100);
  // New segment: directory fsync and the first write (header + A) are issued; nothing else.
  EXPECT_EQ(io_.count(Kind::kFsync), 1u);
  EXPECT_EQ(io_.count(Kind::kWrite), 1u);
  EXPECT_EQ(io_.count(Kind::kDatasync), 0u);
  QueueId b = append(200);
  QueueId c = append(300);
  EXPECT_EQ(io_.count(Kind::kWrite), 1u) << "one write in flight; B and C wait for the next batch";
  EXPECT_EQ(writer_->pending(), 3u);

  ASSERT_TRUE(io_.complete_first(Kind::kWrite));  // write of A done
  EXPECT_EQ(io_.count(Kind::kDatasync), 1u) << "datasync issued once the write completed";
  EXPECT_EQ(io_.count(Kind::kWrite), 1u) << "B+C batch issued as one write";
  EXPECT_TRUE(rec_.calls.empty());

  ASSERT_TRUE(io_.complete_first(Kind::kDatasync));
  EXPECT_TRUE(rec_.calls.empty()) << "directory fsync of the new segment not done yet";
  ASSERT_TRUE(io_.complete_first(Kind::kFsync));
  ASSERT_EQ(rec_.calls.size(), 1u);
  EXPECT_EQ(rec_.calls[0].id, a);

  ASSERT_TRUE(io_.complete_first(Kind::kWrite));  // B+C written
  EXPECT_EQ(io_.count(Kind::kDatasync), 1u);
  ASSERT_TRUE(io_.complete_first(Kind::kDatasync));
  ASSERT_EQ(rec_.calls.size(), 3u) << "B and C share one datasync";
  EXPECT_EQ(rec_.calls[1].id, b);
  EXPECT_EQ(rec_.calls[2].id, c);
  EXPECT_EQ(io_.issued(Kind::kDatasync), 2u);
  EXPECT_EQ(writer_->stats().syncs, 2u);
  EXPECT_EQ(writer_->stats().records, 3u);
  EXPECT_EQ(io_.held(), 0u);
  close_writer();
}

TEST_F(GroupCommitTest, WriteCompletingWhileSyncInFlightWaitsForTheNextSync) {
  append(10);
  io_.complete_first(Kind::kFsync);
  io_.complete_first(Kind::kWrite);  // sync #1 issued, covers A
  QueueId b = append(10);            // write of B issued (no write in flight)
  ASSERT_EQ(io_.count(Kind::kWrite), 1u);
  io_.complete_first(Kind::kWrite);  // B written while sync #1 is in flight
  EXPECT_EQ(io_.count(Kind::kDatasync), 1u) << "at most one datasync in flight";
  io_.complete_first(Kind::kDatasync);  // sync #1 done: covers A only
  ASSERT_EQ(rec_.calls.size(), 1u);
  EXPECT_NE(rec_.calls[0].id, b) << "B's write completed after sync #1 was issued";
  EXPECT_EQ(io_.count(Kind::kDatasync), 1u) << "sync again for B";
  io_.complete_first(Kind::kDatasync);
  ASSERT_EQ(rec_.calls.size(), 2u);
  EXPECT_EQ(rec_.calls[1].id, b);
  close_writer();
}

TEST_F(GroupCommitTest, RotationAcksOldSegmentFirstAndSyncsNewDirectoryEntry) {
  for (int i = 0; i < 12; ++i) append(3000);  // 16 KiB segments: rotates at least twice
  io_.complete_all();
  EXPECT_EQ(rec_.calls.size(), 12u);
  EXPECT_GE(writer_->stats().segments, 3u);
  EXPECT_GE(io_.issued(Kind::kFsync), writer_->stats().segments);
  for (size_t i = 0; i < order_.size(); ++i) EXPECT_EQ(rec_.calls[i].id, order_[i]);
  close_writer();
  auto snap = read_spool(tmp_.spool());
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->live.size(), 12u);
}

// Random interleavings of appends and out-of-order completions: every ack passes the durability
// check, acks come in append order, and everything acked is recovered.
TEST_F(GroupCommitTest, RandomCompletionOrderKeepsThePromise) { random_run(12345); }

// Inline writes (FileIo::write_now) mixed with asynchronous ones: records up to 5,000 bytes in
// 4 KiB batches, so some batches are over the 2 KiB inline limit and take the held write path.
TEST_F(GroupCommitTest, RandomCompletionOrderKeepsThePromiseWithInlineWrites) {
  io_.inline_limit = 2 << 10;
  random_run(777);
  EXPECT_GT(io_.inline_writes, 50u);
  EXPECT_GT(io_.issued(Kind::kWrite), 50u);
}

TEST_F(GroupCommitTest, InlineWritesWaitForTheSyncInFlight) {
  io_.inline_limit = 4 << 10;
  QueueId a = append(100);
  // New segment: the directory fsync is issued; header + A go into the file at once and the
  // datasync covering them is issued; nothing goes through the held write path.
  EXPECT_EQ(io_.inline_writes, 1u);
  EXPECT_EQ(io_.count(Kind::kWrite), 0u);
  EXPECT_EQ(io_.count(Kind::kDatasync), 1u);
  QueueId b = append(100);
  QueueId c = append(100);
  EXPECT_EQ(io_.inline_writes, 1u) << "B and C wait while the datasync runs";
  EXPECT_EQ(io_.count(Kind::kWrite), 0u);
  ASSERT_TRUE(io_.complete_first(Kind::kFsync));
  ASSERT_TRUE(io_.complete_first(Kind::kDatasync));
  ASSERT_EQ(rec_.calls.size(), 1u);
  EXPECT_EQ(rec_.calls[0].id, a);
  EXPECT_EQ(io_.inline_writes, 2u) << "B+C written in one go once the datasync completed";
  EXPECT_EQ(io_.count(Kind::kDatasync), 1u) << "and a datasync for them issued";
  ASSERT_TRUE(io_.complete_first(Kind::kDatasync));
  ASSERT_EQ(rec_.calls.size(), 3u);
  EXPECT_EQ(rec_.calls[1].id, b);
  EXPECT_EQ(rec_.calls[2].id, c);
  EXPECT_EQ(writer_->stats().batches, 2u);
  EXPECT_EQ(writer_->stats().syncs, 2u);
  close_writer();
}

TEST_F(GroupCommitTest, BatchOverTheInlineLimitIsWrittenAsynchronouslyEvenDuringASync) {
  io_.inline_limit = 1000;
  append(100);
  ASSERT_EQ(io_.count(Kind::kDatasync), 1u);
  append(3000);
  EXPECT_EQ(io_.count(Kind::kWrite), 1u) << "a big batch does not wait for the datasync";
  EXPECT_EQ(io_.inline_writes, 1u);
  io_.complete_all();
  ASSERT_EQ(rec_.calls.size(), 2u);
  EXPECT_TRUE(rec_.calls[0].ok);
  EXPECT_TRUE(rec_.calls[1].ok);
  close_writer();
}

TEST_F(GroupCommitTest, InlineWriteErrorFailsTheBatchOutsideAppend) {
  io_.inline_limit = 4 << 10;
  bool inside = false;
  auto durable = rec_.check;
  rec_.check = [&](QueueId id, const Status& st) {
    EXPECT_FALSE(inside) << "callback ran inside append()";
    durable(id, st);
  };
  QueueId a = append(100);
  io_.complete_all();
  ASSERT_EQ(rec_.calls.size(), 1u);
  ASSERT_EQ(io_.held(), 0u);
  // Nothing in flight now: the failure must still be reported, later, by a completion.
  io_.fail_inline_errno = EIO;
  inside = true;
  QueueId b = append(100);  // its inline write fails inside append()
  inside = false;
  EXPECT_EQ(rec_.calls.size(), 1u);
  EXPECT_GT(io_.held(), 0u) << "an operation is in flight to deliver the failure";
  io_.complete_all();
  ASSERT_EQ(rec_.calls.size(), 2u);
  EXPECT_EQ(rec_.calls[1].id, b);
  EXPECT_FALSE(rec_.calls[1].ok);
  EXPECT_NE(rec_.calls[1].error.find("Input/output error"), std::string::npos) << rec_.calls[1].error;
  expect_next_append_in_fresh_segment(a);  // the failed segment takes no more records
  close_writer();
}

void GroupCommitTest::random_run(unsigned seed) {
  std::mt19937 rng(seed);
  for (int step = 0; step < 1500; ++step) {
    int what = static_cast<int>(rng() % 3);
    if (what == 0 || io_.held() == 0) {
      append(rng() % 5000);
    } else {
      io_.complete(rng() % io_.held());
    }
    if (step % 100 == 99) {
      // What ringmail-spool does beside a running daemon: a read-only scan sees every acked record.
      auto snap = read_spool(tmp_.spool());
      ASSERT_TRUE(snap.ok()) << snap.error().message();
      std::set<QueueId> seen;
      for (const auto& m : snap->live) seen.insert(m.env.id);
      for (const auto& c : rec_.calls) EXPECT_TRUE(seen.count(c.id)) << format_queue_id(c.id);
    }
  }
  close_writer();
  ASSERT_EQ(rec_.calls.size(), order_.size());
  for (size_t i = 0; i < order_.size(); ++i) {
    EXPECT_EQ(rec_.calls[i].id, order_[i]);
    EXPECT_TRUE(rec_.calls[i].ok);
  }
  spool_.reset();
  auto again = Spool::open(SpoolOptions{tmp_.spool(), 16 << 10});
  ASSERT_TRUE(again.ok());
  ASSERT_EQ((*again)->recovered().size(), order_.size());
  for (size_t i = 0; i < order_.size(); ++i) EXPECT_EQ((*again)->recovered()[i].env.id, order_[i]);
}

TEST_F(GroupCommitTest, BatchesRespectTheByteCap) {
  append(1000);  // goes out alone
  for (int i = 0; i < 10; ++i) append(1000);  // about 1.1 KB each; cap is 4 KiB
  size_t writes = 0;
  while (io_.find(Kind::kWrite) >= 0) {
    const auto& w = io_.at(static_cast<size_t>(io_.find(Kind::kWrite)));
    EXPECT_LE(w.len, 4096u);
    ++writes;
    io_.complete_first(Kind::kWrite);
  }
  EXPECT_GE(writes, 4u);
  io_.complete_all();
  EXPECT_EQ(rec_.ok_count(), 11u);
  close_writer();
}

TEST_F(GroupCommitTest, WriteErrorFailsTheBatchNeverAcksItAndTheSpoolStaysUsable) {
  QueueId a = append(100);
  io_.complete_first(Kind::kFsync);
  io_.complete_first(Kind::kWrite);
  QueueId b = append(100);
  QueueId c = append(100);  // B in the write in flight, C staged for the same segment
  io_.complete_first(Kind::kDatasync);
  ASSERT_EQ(rec_.calls.size(), 1u);
  EXPECT_EQ(rec_.calls[0].id, a);
  ASSERT_TRUE(io_.complete_first(Kind::kWrite, ENOSPC));
  io_.complete_all();
  ASSERT_EQ(rec_.calls.size(), 3u);
  EXPECT_EQ(rec_.calls[1].id, b);
  EXPECT_FALSE(rec_.calls[1].ok);
  EXPECT_NE(rec_.calls[1].error.find("No space left"), std::string::npos) << rec_.calls[1].error;
  EXPECT_EQ(rec_.calls[2].id, c);
  EXPECT_FALSE(rec_.calls[2].ok) << "data after a failed write in the same segment is never acked";
  expect_next_append_in_fresh_segment(a);
  EXPECT_EQ(writer_->stats().failed, 2u);
  close_writer();
}

TEST_F(GroupCommitTest, SyncErrorFailsEveryUnsyncedRecord) {
  append(100);
  io_.complete_first(Kind::kFsync);
  io_.complete_first(Kind::kWrite);  // sync issued for A; nothing else in flight
  append(100);                       // B written while the sync is in flight
  io_.complete_first(Kind::kWrite);
  ASSERT_TRUE(io_.complete_first(Kind::kDatasync, EIO));
  io_.complete_all();
  ASSERT_EQ(rec_.calls.size(), 2u);
  EXPECT_FALSE(rec_.calls[0].ok);
  EXPECT_FALSE(rec_.calls[1].ok) << "B was written but never covered by a successful sync";
  close_writer();
}

TEST_F(GroupCommitTest, DirectorySyncErrorFailsTheNewSegmentsRecords) {
  append(100);
  ASSERT_TRUE(io_.complete_first(Kind::kFsync, EIO));
  io_.complete_all();
  ASSERT_EQ(rec_.calls.size(), 1u);
  EXPECT_FALSE(rec_.calls[0].ok);
  close_writer();
}

TEST_F(GroupCommitTest, CallbacksNeverRunInsideAppendEvenWhenFailing) {
  bool inside = false;
  rec_.check = [&](QueueId, const Status&) { EXPECT_FALSE(inside); };
  bool closed = false;
  writer_->close([&] { closed = true; });
  EXPECT_TRUE(closed) << "nothing pending: close finishes at once";
  inside = true;
  StoredEnvelope env = make_envelope(1, 1);
  writer_->append(env, "x", &rec_);
  inside = false;
  EXPECT_TRUE(rec_.calls.empty());
  io_.complete_all();
  ASSERT_EQ(rec_.calls.size(), 1u);
  EXPECT_FALSE(rec_.calls[0].ok);
  writer_.reset();
}

TEST_F(GroupCommitTest, AppendFromInsideACallbackIsSafe) {
  int extra = 0;
  rec_.check = [&](QueueId, const Status&) {
    if (extra < 5) {
      ++extra;
      append(50);
    }
  };
  append(50);
  io_.complete_all();
  EXPECT_EQ(rec_.calls.size(), 6u);
  EXPECT_EQ(writer_->pending(), 0u);
  close_writer();
}

class DirectGroupCommitTest : public GroupCommitTest {
 protected:
  bool direct() const override { return true; }
  // The writer falls back to buffered commits where the file system has no O_DIRECT (tmpfs before
  // Linux 6.6); then these tests have nothing to check.
  bool direct_unsupported() const { return writer_->stats().segments > 0 && writer_->stats().direct_segments == 0; }
  // The bytes of the segment file at [offset, offset + len) as they are now.
  std::string file_bytes(QueueId in_segment, uint64_t offset, size_t len) {
    std::string out(len, '\0');
    int fd = ::open(segment_path(tmp_.spool(), locations_[in_segment].segment).c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(pread_all(fd, out.data(), len, offset), static_cast<int>(len));
    ::close(fd);
    return out;
  }
};

TEST_F(DirectGroupCommitTest, OneDurableWritePerCommitCarryingTheLastBlockAgain) {
  QueueId a = append(100);
  if (direct_unsupported()) GTEST_SKIP() << "no O_DIRECT on the file system of TMPDIR";
  // New segment: the directory fsync and one durable write (header + A); no datasync, ever.
  EXPECT_EQ(io_.count(Kind::kFsync), 1u);
  EXPECT_EQ(io_.count(Kind::kWriteDurable), 1u);
  EXPECT_EQ(io_.count(Kind::kWrite), 0u);
  QueueId b = append(200);
  QueueId c = append(300);
  EXPECT_EQ(io_.count(Kind::kWriteDurable), 1u) << "one write in flight; B and C wait for the next";
  const HoldingFileIo::Held first = io_.at(static_cast<size_t>(io_.find(Kind::kWriteDurable)));
  EXPECT_EQ(first.offset, 0u);
  const uint64_t a_end = locations_[a].offset + locations_[a].record_len;
  EXPECT_GE(first.len, a_end);
  ASSERT_TRUE(io_.complete_first(Kind::kWriteDurable));
  EXPECT_TRUE(rec_.calls.empty()) << "directory fsync of the new segment not done yet";
  ASSERT_EQ(io_.count(Kind::kWriteDurable), 1u) << "B+C issued as one write";
  const HoldingFileIo::Held next = io_.at(static_cast<size_t>(io_.find(Kind::kWriteDurable)));
  // It starts at the block holding A's end and carries that block's bytes, unchanged.
  EXPECT_LE(next.offset, a_end);
  EXPECT_EQ(next.offset % 512, 0u);
  EXPECT_EQ(next.len % 512, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(next.wdata) % 512, 0u);
  EXPECT_EQ(std::string(static_cast<const char*>(next.wdata), a_end - next.offset),
            file_bytes(a, next.offset, a_end - next.offset));
  EXPECT_EQ(locations_[b].offset, a_end) << "records stay contiguous: no padding between commits";
  ASSERT_TRUE(io_.complete_first(Kind::kFsync));
  ASSERT_EQ(rec_.calls.size(), 1u);
  EXPECT_EQ(rec_.calls[0].id, a);
  ASSERT_TRUE(io_.complete_first(Kind::kWriteDurable));
  ASSERT_EQ(rec_.calls.size(), 3u) << "B and C share one commit";
  EXPECT_EQ(rec_.calls[1].id, b);
  EXPECT_EQ(rec_.calls[2].id, c);
  EXPECT_EQ(io_.issued(Kind::kDatasync), 0u);
  EXPECT_EQ(writer_->stats().syncs, 2u);
  EXPECT_EQ(writer_->stats().direct_segments, 1u);
  EXPECT_EQ(io_.held(), 0u);
  close_writer();
  auto snap = read_spool(tmp_.spool());
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->live.size(), 3u);
}

// Direct writes go through the real O_DIRECT descriptor when completed, so a misaligned offset,
// length or buffer fails them (EINVAL) and the run's "every record acked" check fails.
TEST_F(DirectGroupCommitTest, RandomCompletionOrderKeepsThePromise) {
  append(10);
  if (direct_unsupported()) GTEST_SKIP() << "no O_DIRECT on the file system of TMPDIR";
  random_run(4242);
  EXPECT_GT(io_.issued(Kind::kWriteDurable), 100u);
  EXPECT_EQ(io_.issued(Kind::kDatasync), 0u);
}

TEST_F(DirectGroupCommitTest, WriteErrorFailsTheUnackedRecordsAndTheSpoolStaysUsable) {
  QueueId a = append(100);
  if (direct_unsupported()) GTEST_SKIP() << "no O_DIRECT on the file system of TMPDIR";
  io_.complete_all();
  ASSERT_EQ(rec_.calls.size(), 1u);
  QueueId b = append(100);
  QueueId c = append(100);  // B in the write in flight, C staged for the same segment
  ASSERT_TRUE(io_.complete_first(Kind::kWriteDurable, EIO));
  io_.complete_all();
  ASSERT_EQ(rec_.calls.size(), 3u);
  EXPECT_EQ(rec_.calls[1].id, b);
  EXPECT_FALSE(rec_.calls[1].ok);
  EXPECT_NE(rec_.calls[1].error.find("Input/output error"), std::string::npos) << rec_.calls[1].error;
  EXPECT_EQ(rec_.calls[2].id, c);
  EXPECT_FALSE(rec_.calls[2].ok) << "data after a failed write in the same segment is never acked";
  expect_next_append_in_fresh_segment(a);
  EXPECT_EQ(io_.issued(Kind::kDatasync), 0u) << "a plain I/O error does not turn direct I/O off";
  close_writer();
  spool_.reset();
  auto again = Spool::open(SpoolOptions{tmp_.spool(), 16 << 10});
  ASSERT_TRUE(again.ok());
  ASSERT_EQ((*again)->recovered().size(), 2u) << "A and the record after the failure";
}

TEST_F(DirectGroupCommitTest, RejectedDirectWriteSwitchesNewSegmentsToBufferedCommits) {
  QueueId a = append(100);
  if (direct_unsupported()) GTEST_SKIP() << "no O_DIRECT on the file system of TMPDIR";
  ASSERT_TRUE(io_.complete_first(Kind::kWriteDurable, EINVAL));
  io_.complete_all();
  ASSERT_EQ(rec_.calls.size(), 1u);
  EXPECT_FALSE(rec_.calls[0].ok);
  const uint64_t datasyncs = io_.issued(Kind::kDatasync);
  expect_next_append_in_fresh_segment(a);
  EXPECT_GT(io_.issued(Kind::kDatasync), datasyncs) << "the new segment commits with write + fdatasync";
  EXPECT_EQ(writer_->stats().direct_segments, 1u);
  close_writer();
}

TEST_F(DirectGroupCommitTest, ABigRecordGoesOutInOneWriteAndLaterCommitsStillWork) {
  QueueId a = append(100);
  if (direct_unsupported()) GTEST_SKIP() << "no O_DIRECT on the file system of TMPDIR";
  io_.complete_all();
  QueueId big = append(40000);  // over the 16 KiB segment size and 2x the 4 KiB batch cap
  ASSERT_EQ(io_.count(Kind::kWriteDurable), 1u);
  io_.complete_all();
  ASSERT_EQ(rec_.calls.size(), 2u);
  EXPECT_TRUE(rec_.calls[1].ok);
  EXPECT_NE(locations_[big].segment, locations_[a].segment) << "a record over the segment size gets its own";
  append(100);
  io_.complete_all();
  EXPECT_EQ(rec_.ok_count(), 3u);
  close_writer();
}

}  // namespace
}  // namespace ringmail::queue
