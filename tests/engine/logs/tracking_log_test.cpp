// Unit tests of the message-tracking log: each event's JSON line, escaping (quotes, control
// octets, invalid UTF-8 from a peer), and the file name. Every line is checked to parse as JSON by
// the integration test (tests/integration/test_tracking_log.py).
#include "engine/logs/tracking_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace ringmail::engine {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(TrackingLog, OneJsonLinePerEvent) {
  char tmpl[] = "/tmp/ringmail-track-XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  ManualClock clock;
  clock.set_wall(WallTime(duration_cast<WallTime::duration>(milliseconds(1795910399250))));  // 2026-11-28T23:59:59.250Z
  {
    TrackingLog log(nullptr, dir.string(), 1, clock);
    queue::StoredEnvelope env;
    env.id = 0x0123456789ABCDEFull;
    env.mail_from = "s@example.org";
    env.rcpts = {"a@example.com", "q\"uote@example.com"};
    env.client = "[127.0.0.1]:4000 client.test";
    log.receive(env, 1234, "<m.1@example.org>");
    log.deliver(env.id, "a@example.com", "Smart", "127.0.0.1:25", "host said: 250 2.0.0 ok\x01\xff", 1);
    log.bounce(env.id, "b@example.com", "Smart", "127.0.0.1:25", "5.1.1", "host said: 550 5.1.1 unknown");
    log.defer(env.id, {"c@example.com", "d@example.com"}, "Internet", "", 3, 1200, "all 2 hosts failed");
    log.expire(env.id, {"e@example.com"}, "timeout");
    log.remove(env.id, {"f@example.com"}, "smtp:example.com", true);
    log.dsn(env.id, "failure", "s@example.org", 2);
    log.reject(0, "192.0.2.7:4000 x", "MAIL", "FROM:<a@b> SIZE=99", "552 5.3.4 Message size exceeds fixed limit");
  }
  const auto lines = lines_of(dir / "tracking-20261128-w1.log");
  const std::string t = R"({"time":"2026-11-28T23:59:59.250Z",)";
  const std::vector<std::string> want{
      t + R"("event":"receive","id":"0123456789ABCDEF","from":"s@example.org","to":["a@example.com","q\"uote@example.com"],"size":1234,"client":"[127.0.0.1]:4000 client.test","message_id":"<m.1@example.org>"})",
      t + R"("event":"deliver","id":"0123456789ABCDEF","to":"a@example.com","connector":"Smart","remote":"127.0.0.1:25","reply":"host said: 250 2.0.0 ok\u0001\ufffd","attempt":1})",
      t + R"("event":"bounce","id":"0123456789ABCDEF","to":"b@example.com","connector":"Smart","remote":"127.0.0.1:25","status":"5.1.1","reply":"host said: 550 5.1.1 unknown"})",
      t + R"("event":"defer","id":"0123456789ABCDEF","to":["c@example.com","d@example.com"],"connector":"Internet","remote":"","attempt":3,"retry_in":1200,"reason":"all 2 hosts failed"})",
      t + R"("event":"expire","id":"0123456789ABCDEF","to":["e@example.com"],"reason":"timeout"})",
      t + R"("event":"remove","id":"0123456789ABCDEF","to":["f@example.com"],"queue":"smtp:example.com","dsn":true})",
      t + R"("event":"dsn","id":"0123456789ABCDEF","kind":"failure","to":"s@example.org","recipients":2})",
      t + R"("event":"reject","id":"","client":"192.0.2.7:4000 x","command":"MAIL","argument":"FROM:<a@b> SIZE=99","reply":"552 5.3.4 Message size exceeds fixed limit"})",
  };
  EXPECT_EQ(lines, want);
  fs::remove_all(dir);
}

// Retention: opening a new day's file removes this writer's files of days beyond max_age_days and
// nothing else (other workers' files, other prefixes, odd names, files within the age).
TEST(TrackingLog, OldFilesOfThisWriterAreRemovedWhenADayBegins) {
  char tmpl[] = "/tmp/ringmail-track-XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  const std::vector<std::string> old_mine{"tracking-20261027-w2.log", "tracking-20250101-w2.log"};
  const std::vector<std::string> kept{"tracking-20261029-w2.log",  // 30 days before the 28th of November
                                      "tracking-20261027-w1.log",  // another worker's
                                      "send-20261027-w2.log",      // the protocol log's
                                      "tracking-2026102-w2.log",   // not a date
                                      "tracking-20261027-w2.log.gz", "notes.txt"};
  for (const auto& n : old_mine) std::ofstream(dir / n) << "x\n";
  for (const auto& n : kept) std::ofstream(dir / n) << "x\n";
  ManualClock clock;
  clock.set_wall(WallTime(duration_cast<WallTime::duration>(milliseconds(1795910399250))));  // 2026-11-28
  {
    TrackingLog log(nullptr, dir.string(), 2, clock, 30);
    queue::StoredEnvelope env;
    log.receive(env, 1);
  }
  for (const auto& n : old_mine) EXPECT_FALSE(fs::exists(dir / n)) << n;
  for (const auto& n : kept) EXPECT_TRUE(fs::exists(dir / n)) << n;
  EXPECT_TRUE(fs::exists(dir / "tracking-20261128-w2.log"));
  {
    TrackingLog keep_all(nullptr, dir.string(), 1, clock, 0);  // 0: nothing removed
    queue::StoredEnvelope env;
    keep_all.receive(env, 1);
  }
  EXPECT_TRUE(fs::exists(dir / "tracking-20261027-w1.log"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ringmail::engine
