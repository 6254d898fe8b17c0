// Spool round trip: messages of many sizes (empty body, bigger than a segment) appended with
// BlockingFileIo come back byte-identical after reopening (DSN parameters included); reading back
// through FileIo; the lock.
#include <gtest/gtest.h>

#include "queue/spool.h"
#include "queue/spool_writer.h"
#include "test_support.h"

namespace ringmail::queue {
namespace {

using testing::CommitRecorder;
using testing::make_body;
using testing::make_envelope;
using testing::TempDir;

struct Sent {
  StoredEnvelope env;     // as appended
  std::string body;       // as appended
  MessageLocation loc;    // returned by append
};

std::vector<Sent> append_messages(Spool& spool, const std::vector<size_t>& sizes, unsigned writer_id = 0) {
  BlockingFileIo io;
  ManualClock clock;
  auto writer = spool.make_writer(writer_id, io, clock);
  EXPECT_TRUE(writer.ok());
  CommitRecorder rec;
  std::vector<Sent> sent;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Sent s{make_envelope((*writer)->next_id(), 1 + i % 4, i % 5 == 0 ? "" : "from@example.org"),
           make_body(sizes[i], static_cast<unsigned>(i)), {}};
    s.env.flags = static_cast<uint32_t>(i % 4);
    if (i % 3 == 1) {  // RFC 3461 parameters ride along in the envelope
      s.env.dsn_ret = 1 + i % 2;
      s.env.envid = "envid-" + std::to_string(i);
      for (size_t r = 0; r < s.env.rcpts.size(); ++r)
        s.env.rcpt_dsn.push_back({static_cast<uint8_t>(r % 2 ? 0 : 6), r % 2 ? "" : "rfc822", r % 2 ? "" : s.env.rcpts[r]});
    }
    s.loc = (*writer)->append(s.env, s.body, &rec);
    sent.push_back(std::move(s));
    if (i % 3 == 2) io.drain();  // vary batch sizes
  }
  bool closed = false;
  (*writer)->close([&] { closed = true; });
  io.drain();
  EXPECT_TRUE(closed);
  EXPECT_EQ(rec.calls.size(), sizes.size());
  EXPECT_EQ(rec.ok_count(), sizes.size());
  for (size_t i = 0; i < rec.calls.size(); ++i) EXPECT_EQ(rec.calls[i].id, sent[i].env.id) << "acks in append order";
  return sent;
}

TEST(SpoolRoundTrip, EveryMessageComesBackByteIdentical) {
  TempDir tmp;
  SpoolOptions opt{tmp.spool(), 64 << 10, 16 << 10};
  std::vector<size_t> sizes = {0, 1, 7, 8, 100, 5000, 200'000 /* > segment */, 3, 65'000, 0, 12'345, 1 << 20};
  for (int i = 0; i < 40; ++i) sizes.push_back(static_cast<size_t>(i * 997 % 9000));
  std::vector<Sent> sent;
  {
    auto spool = Spool::open(opt);
    ASSERT_TRUE(spool.ok()) << spool.error().message();
    EXPECT_TRUE((*spool)->recovered().empty());
    sent = append_messages(**spool, sizes);
  }
  auto spool = Spool::open(opt);
  ASSERT_TRUE(spool.ok()) << spool.error().message();
  const auto& rec = (*spool)->recovered();
  ASSERT_EQ(rec.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(rec[i].env, sent[i].env) << i;
    EXPECT_EQ(rec[i].location, sent[i].loc) << i;
    EXPECT_EQ(rec[i].pending_count(), sent[i].env.rcpts.size());
    auto msg = (*spool)->read_message_blocking(rec[i].location);
    ASSERT_TRUE(msg.ok()) << msg.error().message();
    EXPECT_EQ(msg->env, sent[i].env);
    EXPECT_EQ(msg->body, sent[i].body) << "message " << i << " of " << sent[i].body.size() << " bytes";
  }
  // More than one segment was used, and the huge messages got segments of their own.
  EXPECT_GT((*spool)->recovery_scans().size(), 3u);
}

// Reads a message back through FileIo, as the delivery path will.
struct ReadDone final : FileIo::Op {
  int result = 1;  // 1 = not yet completed
  void complete(int r) override { result = r; }
};

TEST(SpoolRoundTrip, AsyncReadBackThroughFileIo) {
  TempDir tmp;
  SpoolOptions opt{tmp.spool(), 64 << 10, 16 << 10};
  std::vector<Sent> sent;
  {
    auto spool = Spool::open(opt);
    ASSERT_TRUE(spool.ok());
    sent = append_messages(**spool, {10, 70'000, 300});
    // Reading works in the same session too, before any restart.
    BlockingFileIo io;
    std::vector<uint8_t> buf(sent[1].loc.record_len);
    ReadDone done;
    (*spool)->read_message(sent[1].loc, buf.data(), io, &done);
    EXPECT_EQ(done.result, 1) << "completion must not run inside read_message";
    io.drain();
    ASSERT_GE(done.result, 0);
    auto msg = decode_message(buf.data(), buf.size(), sent[1].loc);
    ASSERT_TRUE(msg.ok()) << msg.error().message();
    EXPECT_EQ(msg->body, sent[1].body);
    // A flipped byte is caught by the CRC on read-back.
    buf[buf.size() / 2] ^= 0x40;
    EXPECT_FALSE(decode_message(buf.data(), buf.size(), sent[1].loc).ok());
  }
}

TEST(SpoolLock, SecondOpenOnTheSameDirectoryFailsClearly) {
  TempDir tmp;
  SpoolOptions opt{tmp.spool()};
  auto first = Spool::open(opt);
  ASSERT_TRUE(first.ok());
  auto second = Spool::open(opt);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message().find("in use by another ringmail process"), std::string::npos)
      << second.error().message();
  EXPECT_NE(second.error().message().find(std::to_string(::getpid())), std::string::npos) << "names the holder";
  first->reset();
  EXPECT_TRUE(Spool::open(opt).ok()) << "lock released on close";
}

TEST(SpoolWriterIds, EachWriterIdOnceAndIdsAboveRecoveredOnes) {
  TempDir tmp;
  SpoolOptions opt{tmp.spool(), 64 << 10};
  QueueId last = 0;
  {
    auto spool = Spool::open(opt);
    ASSERT_TRUE(spool.ok());
    last = append_messages(**spool, {1, 2, 3}).back().env.id;
  }
  auto spool = Spool::open(opt);
  ASSERT_TRUE(spool.ok());
  BlockingFileIo io;
  ManualClock clock;  // behind the real time the first ids came from? no matter: the floor wins
  clock.set_wall(WallTime(std::chrono::seconds(1'704'067'200)));
  auto w = (*spool)->make_writer(0, io, clock);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE((*spool)->make_writer(0, io, clock).ok());
  EXPECT_FALSE((*spool)->make_writer(256, io, clock).ok());
  EXPECT_GT((*w)->next_id(), last);
}

}  // namespace
}  // namespace ringmail::queue
