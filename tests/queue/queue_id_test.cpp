// Queue IDs: layout, format/parse round trip, uniqueness within a writer (including sequence
// overflow and a clock stepping back), across writers and across a restart floor.
#include "queue/queue_id.h"

#include <gtest/gtest.h>

#include <set>

namespace ringmail::queue {
namespace {

TEST(QueueId, FormatParseRoundTrip) {
  for (QueueId id : {QueueId{0}, QueueId{1}, QueueId{0x0123456789ABCDEF}, ~QueueId{0}}) {
    std::string text = format_queue_id(id);
    EXPECT_EQ(text.size(), 16u);
    auto back = parse_queue_id(text);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(*back, id);
  }
  EXPECT_EQ(format_queue_id(0xABCDEF), "0000000000ABCDEF");
  EXPECT_EQ(*parse_queue_id("0000000000abcdef"), 0xABCDEFu);
  EXPECT_FALSE(parse_queue_id("0000000000ABCDE").ok());
  EXPECT_FALSE(parse_queue_id("0000000000ABCDEG").ok());
  EXPECT_FALSE(parse_queue_id("").ok());
}

TEST(QueueId, LayoutHoldsTimeWriterSequence) {
  ManualClock clock;
  QueueIdGenerator gen(7, 0);
  QueueId id = gen.next(clock.wall());
  EXPECT_EQ(queue_id_writer(id), 7u);
  EXPECT_EQ(queue_id_sequence(id), 0u);
  EXPECT_EQ(queue_id_ms(id), queue_id_epoch_ms(clock.wall()));
  auto back = std::chrono::duration_cast<std::chrono::milliseconds>(queue_id_time(id) - clock.wall()).count();
  EXPECT_LE(std::abs(back), 1);
}

TEST(QueueId, UniqueWithinOneMillisecondBorrowingTheNext) {
  ManualClock clock;  // time stands still: 200k ids in one ms must borrow
  QueueIdGenerator gen(3, 0);
  QueueId prev = 0;
  std::set<QueueId> seen;
  for (int i = 0; i < 200'000; ++i) {
    QueueId id = gen.next(clock.wall());
    ASSERT_GT(id, prev);
    prev = id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 200'000u);
  EXPECT_EQ(queue_id_ms(prev), queue_id_epoch_ms(clock.wall()) + 3);  // 200000 / 65536 -> 3 borrowed ms
}

TEST(QueueId, ClockSteppingBackKeepsIdsIncreasing) {
  ManualClock clock;
  QueueIdGenerator gen(0, 0);
  QueueId a = gen.next(clock.wall());
  clock.set_wall(clock.wall() - std::chrono::seconds(10));
  QueueId b = gen.next(clock.wall());
  EXPECT_GT(b, a);
}

TEST(QueueId, WritersNeverCollideAndRestartFloorIsRespected) {
  ManualClock clock;
  QueueIdGenerator w0(0, 0), w1(1, 0);
  std::set<QueueId> seen;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(seen.insert(w0.next(clock.wall())).second);
    ASSERT_TRUE(seen.insert(w1.next(clock.wall())).second);
  }
  // After a restart with a clock behind the ids seen on disk, new ids are still larger.
  uint64_t floor = queue_id_epoch_ms(clock.wall()) + 5000;
  QueueIdGenerator again(0, floor);
  EXPECT_GT(queue_id_ms(again.next(clock.wall())), floor);
}

}  // namespace
}  // namespace ringmail::queue
