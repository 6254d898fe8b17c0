// Unit tests of engine/admin/admin_render: durations, times, JSON quoting of operator-visible
// text, and the alignment of the human tables.
#include "engine/admin/admin_render.h"

#include <gtest/gtest.h>

namespace ringmail::admin {
namespace {

using namespace std::chrono;

TEST(AdminRender, ShortDuration) {
  EXPECT_EQ(short_duration(seconds(-5)), "now");
  EXPECT_EQ(short_duration(seconds(0)), "now");
  EXPECT_EQ(short_duration(seconds(45)), "45s");
  EXPECT_EQ(short_duration(seconds(252)), "4m12s");
  EXPECT_EQ(short_duration(seconds(3 * 3600 + 5 * 60 + 59)), "3h05m");
  EXPECT_EQ(short_duration(seconds(2 * 86400 + 3 * 3600)), "2d03h");
}

TEST(AdminRender, Iso8601) {
  EXPECT_EQ(iso8601(WallTime{}), "");
  EXPECT_EQ(iso8601(WallTime(seconds(1'800'000'000))), "2027-01-15T08:00:00Z");
}

TEST(AdminRender, JsonQuotesOperatorText) {
  QueueInfo q;
  q.id = "q\"1";
  q.last_error = "550 \"no\"\r\nsecond line";
  std::string j = queues_json({q}, WallTime(seconds(1000)));
  EXPECT_NE(j.find(R"("id":"q\"1")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("last_error":"550 \"no\"\r\nsecond line")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("next_retry":null,"next_retry_in_seconds":null)"), std::string::npos) << j;
  EXPECT_EQ(action_json({ActionStatus::kNotFound, "no queue x"}), "{\"ok\":false,\"message\":\"no queue x\"}\n");
}

TEST(AdminRender, TableColumnsAlignAndControlCharactersVanish) {
  WallTime now(seconds(10'000));
  QueueInfo a{"a", "short.example", "c1", QueueState::kReady, 1, 1, seconds(30), "", {}};
  QueueInfo b{"bbbbbbbb", "x", "", QueueState::kRetry, 12, 345, seconds(4000), "421 busy\r\nnow", now + seconds(90)};
  std::string t = queues_table({a, b}, now);
  EXPECT_EQ(t,
            "QUEUE     NEXT HOP       CONNECTOR  STATE  MSGS  RCPTS  OLDEST  NEXT RETRY  LAST ERROR\n"
            "a         short.example  c1         Ready     1      1     30s  -           -\n"
            "bbbbbbbb  x              -          Retry    12    345   1h06m  in 1m30s    421 busy  now\n"
            "2 queues, 13 messages, 346 recipients\n");
}

}  // namespace
}  // namespace ringmail::admin
