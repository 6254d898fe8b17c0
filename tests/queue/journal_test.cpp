// Delivery journal: recipient states replayed at recovery, fully final messages not returned,
// finished segments deleted (at recovery and at run time), compaction to one journal, lazy sync.
#include "queue/journal.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "queue/spool.h"
#include "queue/spool_writer.h"
#include "test_support.h"

namespace ringmail::queue {
namespace {

using testing::CommitRecorder;
using testing::HoldingFileIo;
using testing::list_dir;
using testing::make_body;
using testing::make_envelope;
using testing::TempDir;
using Kind = HoldingFileIo::Kind;

struct Stored {
  StoredEnvelope env;    // appended
  MessageLocation loc;   // where
};

// Appends messages with the given recipient counts and body sizes; returns them.
std::vector<Stored> store(Spool& spool, const std::vector<std::pair<size_t, size_t>>& rcpts_and_sizes) {
  BlockingFileIo io;
  ManualClock clock;
  auto w = spool.make_writer(0, io, clock);
  EXPECT_TRUE(w.ok());
  CommitRecorder rec;
  std::vector<Stored> out;
  for (auto [n, size] : rcpts_and_sizes) {
    StoredEnvelope env = make_envelope((*w)->next_id(), n);
    MessageLocation loc = (*w)->append(env, make_body(size, 1), &rec);
    out.push_back({env, loc});
  }
  (*w)->close([] {});
  io.drain();
  EXPECT_EQ(rec.ok_count(), out.size());
  return out;
}

void journal_updates(Spool& spool, const std::vector<DeliveryUpdate>& updates) {
  BlockingFileIo io;
  ManualClock clock;
  auto j = spool.make_journal(0, io, clock);
  ASSERT_TRUE(j.ok()) << j.error().message();
  for (const auto& u : updates) (*j)->record(u);
  bool done = false;
  (*j)->close([&] { done = true; });
  io.drain();
  EXPECT_TRUE(done);
  EXPECT_EQ((*j)->unsynced(), 0u);
}

TEST(DeliveryJournal, ReplayFinalStatesDeleteFinishedSegmentsAndCompact) {
  TempDir tmp;
  SpoolOptions opt{tmp.spool(), 64 << 10};
  const WallTime retry_at = WallTime(std::chrono::seconds(1'800'000'600));
  std::vector<Stored> msgs;
  {
    auto spool = Spool::open(opt);
    ASSERT_TRUE(spool.ok());
    // a: 2 rcpts, b: 1 rcpt, c: 3 rcpts (all in segment 1); d: big, alone in its own segment.
    msgs = store(**spool, {{2, 100}, {1, 100}, {3, 100}, {1, 100 << 10}});
    ASSERT_NE(msgs[3].loc.segment, msgs[0].loc.segment);
    journal_updates(**spool, {
                                 {msgs[0].env.id, 0, RcptState::kDelivered, 1, {}},
                                 {msgs[0].env.id, 1, RcptState::kFailed, 1, {}},
                                 {msgs[1].env.id, 0, RcptState::kDeferred, 1, retry_at},
                                 {msgs[2].env.id, 2, RcptState::kDelivered, 2, {}},
                                 {msgs[2].env.id, 2, RcptState::kDeferred, 1, retry_at},  // older, loses
                                 {msgs[3].env.id, 0, RcptState::kDelivered, 1, {}},
                                 {0xDEAD, 0, RcptState::kDelivered, 1, {}},  // unknown message: ignored
                             });
  }
  const std::string seg_d = segment_path(tmp.spool(), msgs[3].loc.segment);
  EXPECT_TRUE(std::filesystem::exists(seg_d));
  for (int round = 0; round < 2; ++round) {  // the second open replays the compacted journal
    auto spool = Spool::open(opt);
    ASSERT_TRUE(spool.ok()) << spool.error().message();
    const auto& rec = (*spool)->recovered();
    ASSERT_EQ(rec.size(), 2u) << "a (all final) and d (delivered) are not returned";
    EXPECT_EQ(rec[0].env.id, msgs[1].env.id);
    EXPECT_EQ(rec[0].rcpts[0], (RecipientState{RcptState::kDeferred, 0, 1, retry_at}));
    EXPECT_EQ(rec[0].pending_count(), 1u);
    EXPECT_EQ(rec[1].env.id, msgs[2].env.id);
    EXPECT_EQ(rec[1].rcpts[2].state, RcptState::kDelivered);
    EXPECT_EQ(rec[1].rcpts[0].state, RcptState::kPending);
    EXPECT_EQ(rec[1].pending_count(), 2u);
    EXPECT_FALSE(std::filesystem::exists(seg_d)) << "segment with only final messages deleted";
    EXPECT_EQ(list_dir(journal_dir(tmp.spool())).size(), 1u) << "journals compacted into one";
  }
}

TEST(DeliveryJournal, AllFinalAndNoStateLeftRemovesEveryJournal) {
  TempDir tmp;
  SpoolOptions opt{tmp.spool(), 64 << 10};
  {
    auto spool = Spool::open(opt);
    ASSERT_TRUE(spool.ok());
    auto msgs = store(**spool, {{1, 10}});
    journal_updates(**spool, {{msgs[0].env.id, 0, RcptState::kDelivered, 1, {}}});
  }
  auto spool = Spool::open(opt);
  ASSERT_TRUE(spool.ok());
  EXPECT_TRUE((*spool)->recovered().empty());
  EXPECT_TRUE(list_dir(journal_dir(tmp.spool())).empty());
  EXPECT_TRUE(list_dir(segment_dir(tmp.spool())).empty());
}

TEST(DeliveryJournal, SyncIsLazyAndGrouped) {
  TempDir tmp;
  auto spool = Spool::open(SpoolOptions{tmp.spool()});
  ASSERT_TRUE(spool.ok());
  HoldingFileIo io;
  ManualClock clock;
  auto j = (*spool)->make_journal(3, io, clock);
  ASSERT_TRUE(j.ok());
  for (uint32_t i = 0; i < 3; ++i) (*j)->record({42, i, RcptState::kDelivered, 1, {}});
  EXPECT_EQ(io.count(Kind::kWrite), 1u) << "first record written at once, the others wait";
  io.complete_first(Kind::kWrite);
  EXPECT_EQ(io.count(Kind::kWrite), 1u) << "records 2 and 3 written together";
  io.complete_first(Kind::kWrite);
  (*j)->poll();
  EXPECT_EQ(io.count(Kind::kDatasync), 0u) << "no sync before the interval";
  EXPECT_EQ((*j)->unsynced(), 3u);
  clock.advance(std::chrono::milliseconds(150));
  (*j)->poll();
  EXPECT_EQ(io.count(Kind::kDatasync), 1u);
  io.complete_all();
  EXPECT_EQ((*j)->unsynced(), 0u);
  EXPECT_EQ((*j)->stats().syncs, 1u);
  bool done = false;
  (*j)->close([&] { done = true; });
  EXPECT_TRUE(done);
  auto snap = read_spool(tmp.spool());
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->journals.size(), 1u);
  EXPECT_EQ(snap->journals[0].records, 3u);
  EXPECT_FALSE(snap->journals[0].torn);
}

TEST(SegmentRelease, RuntimeReleaseMakesASealedSegmentDeletable) {
  TempDir tmp;
  auto spool = Spool::open(SpoolOptions{tmp.spool(), 64 << 10});
  ASSERT_TRUE(spool.ok());
  BlockingFileIo io;
  ManualClock clock;
  auto w = (*spool)->make_writer(0, io, clock);
  ASSERT_TRUE(w.ok());
  CommitRecorder rec;
  StoredEnvelope a = make_envelope((*w)->next_id(), 1), b = make_envelope((*w)->next_id(), 1);
  MessageLocation la = (*w)->append(a, "a", &rec), lb = (*w)->append(b, "b", &rec);
  io.drain();
  ASSERT_EQ(rec.ok_count(), 2u);
  (*spool)->release_message(la);
  (*spool)->release_message(lb);
  EXPECT_TRUE((*spool)->empty_segments().empty()) << "the writer still appends to it";
  (*w)->close([] {});
  io.drain();
  ASSERT_EQ((*spool)->empty_segments(), std::vector<uint64_t>{la.segment});
  std::string path = segment_path(tmp.spool(), la.segment);
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ((*spool)->delete_empty_segments(), 1u);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE((*spool)->empty_segments().empty());
}

TEST(SegmentRelease, RecoveredSegmentDeletableOnceAllItsMessagesReleased) {
  TempDir tmp;
  SpoolOptions opt{tmp.spool(), 64 << 10};
  {
    auto spool = Spool::open(opt);
    ASSERT_TRUE(spool.ok());
    store(**spool, {{1, 10}, {1, 10}});
  }
  auto spool = Spool::open(opt);
  ASSERT_TRUE(spool.ok());
  const auto& rec = (*spool)->recovered();
  ASSERT_EQ(rec.size(), 2u);
  (*spool)->release_message(rec[0].location);
  EXPECT_TRUE((*spool)->empty_segments().empty());
  (*spool)->release_message(rec[1].location);
  EXPECT_EQ((*spool)->delete_empty_segments(), 1u);
  EXPECT_TRUE(list_dir(segment_dir(tmp.spool())).empty());
}

}  // namespace
}  // namespace ringmail::queue

namespace ringmail::queue {
namespace {

// release_message() runs on another thread while the writer seals segments: every segment ends up
// deletable exactly once (this test also runs under ThreadSanitizer).
TEST(SegmentRelease, ConcurrentReleaseFromAnotherThread) {
  TempDir tmp;
  auto spool = Spool::open(SpoolOptions{tmp.spool(), 8 << 10});
  ASSERT_TRUE(spool.ok());
  std::mutex mu;
  std::condition_variable cv;
  std::deque<MessageLocation> acked;  // handed to the releasing thread
  bool finished = false;
  std::thread releaser([&] {
    std::unique_lock lock(mu);
    while (true) {
      cv.wait(lock, [&] { return finished || !acked.empty(); });
      if (acked.empty() && finished) return;
      MessageLocation loc = acked.front();
      acked.pop_front();
      lock.unlock();
      (*spool)->release_message(loc);
      lock.lock();
    }
  });
  BlockingFileIo io;
  ManualClock clock;
  auto w = (*spool)->make_writer(0, io, clock);
  ASSERT_TRUE(w.ok());
  struct Handoff final : CommitCallback {
    std::map<QueueId, MessageLocation> locs;  // appended
    std::function<void(const MessageLocation&)> give;
    void committed(QueueId id, Status s) override {
      EXPECT_TRUE(s.ok());
      give(locs.at(id));
    }
  } cb;
  cb.give = [&](const MessageLocation& loc) {
    std::lock_guard lock(mu);
    acked.push_back(loc);
    cv.notify_one();
  };
  std::set<uint64_t> segments;
  for (int i = 0; i < 300; ++i) {
    StoredEnvelope env = make_envelope((*w)->next_id(), 1);
    MessageLocation loc = (*w)->append(env, make_body(500, i), &cb);
    cb.locs[env.id] = loc;
    segments.insert(loc.segment);
    if (i % 7 == 0) io.drain();
  }
  (*w)->close([] {});
  io.drain();
  {
    std::lock_guard lock(mu);
    finished = true;
    cv.notify_one();
  }
  releaser.join();
  EXPECT_GT(segments.size(), 5u);
  auto empty = (*spool)->empty_segments();
  EXPECT_EQ(std::set<uint64_t>(empty.begin(), empty.end()), segments);
  EXPECT_EQ(empty.size(), segments.size()) << "each segment queued once";
  EXPECT_EQ((*spool)->delete_empty_segments(), segments.size());
  EXPECT_TRUE(list_dir(segment_dir(tmp.spool())).empty());
}

}  // namespace
}  // namespace ringmail::queue
