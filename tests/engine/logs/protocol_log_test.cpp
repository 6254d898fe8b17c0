// Unit tests of the outbound protocol log writer: line format and escaping, one file per UTC day
// (lines go to the day they were written in, even when flushed after midnight), the header once per
// file, appending across restarts, the flush by the loop's timer or when 64 KiB wait, and a directory that
// cannot be written (lines dropped, nothing thrown, writing again once it can).
#include "engine/logs/protocol_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/loop/loop.h"

namespace ringmail::engine {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/ringmail-plog-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, ec);
    fs::remove_all(path, ec);
  }
};

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

WallTime at(int64_t unix_ms) { return WallTime(duration_cast<WallTime::duration>(milliseconds(unix_ms))); }

// 2026-11-28T23:59:59.250Z
constexpr int64_t kBeforeMidnight = 1795910399250;

TEST(ProtocolLog, EscapesEverythingOutsidePrintableAscii) {
  std::string out;
  append_log_escaped(out, std::string_view("a\tb\\c\r\n\0\x7f\xe9~ ", 12));
  EXPECT_EQ(out, "a\\x09b\\\\c\\x0d\\x0a\\x00\\x7f\\xe9~ ");
}

TEST(ProtocolLog, LineFormatHeaderAndDays) {
  TempDir dir;
  ManualClock clock;
  clock.set_wall(at(kBeforeMidnight));
  {
    ProtocolLog log(nullptr, dir.path.string(), 3, clock);
    log.write("3.1", "Smart Host", "[192.0.2.1]:25", '<', "250-mx\thello \xff");
    log.write("3.1", "Smart Host", "[192.0.2.1]:25", '>', "QUIT");
    clock.advance(milliseconds(800));  // 2026-11-29T00:00:00.050Z: buffered lines stay in their day
    log.write("3.2", "Smart Host", "[192.0.2.1]:25", '+', "connected from 10.0.0.1:4000");
    log.flush();
    EXPECT_EQ(log.path_for(clock.wall()), (dir.path / "send-20261129-w3.log").string());
  }
  auto day1 = lines_of(dir.path / "send-20261128-w3.log");
  ASSERT_EQ(day1.size(), 3u);
  EXPECT_EQ(day1[0].rfind("# ringmail outbound protocol log, worker 3.", 0), 0u) << day1[0];
  EXPECT_EQ(day1[1], "2026-11-28T23:59:59.250Z\t3.1\tSmart Host\t[192.0.2.1]:25\t<\t250-mx\\x09hello \\xff");
  EXPECT_EQ(day1[2], "2026-11-28T23:59:59.250Z\t3.1\tSmart Host\t[192.0.2.1]:25\t>\tQUIT");
  auto day2 = lines_of(dir.path / "send-20261129-w3.log");
  ASSERT_EQ(day2.size(), 2u);
  EXPECT_EQ(day2[1], "2026-11-29T00:00:00.050Z\t3.2\tSmart Host\t[192.0.2.1]:25\t+\tconnected from 10.0.0.1:4000");

  // A second writer (a restart) appends to the day's file without a second header.
  {
    ProtocolLog log(nullptr, dir.path.string(), 3, clock);
    log.write("3.1", "Smart Host", "[192.0.2.1]:25", '-', "closed");
  }
  day2 = lines_of(dir.path / "send-20261129-w3.log");
  ASSERT_EQ(day2.size(), 3u);
  EXPECT_EQ(day2[2], "2026-11-29T00:00:00.050Z\t3.1\tSmart Host\t[192.0.2.1]:25\t-\tclosed");
}

// Written by the loop's timer within 100 ms of the first unwritten line, not at once; and at once
// when 64 KiB are waiting.
TEST(ProtocolLog, FlushedByTheLoopTimerOrWhenFull) {
  TempDir dir;
  auto made = Loop::create(LoopOptions{});
  ASSERT_TRUE(made.ok()) << made.error().message();
  Loop& loop = **made;
  struct Stop final : Timer {
    Loop* loop = nullptr;
    void fire() override { loop->stop(); }
  } stop;
  stop.loop = &loop;
  ProtocolLog log(&loop, dir.path.string(), 0);
  const std::string path = log.path_for(SystemClock::instance().wall());
  loop.post([&] {
    log.write("0.1", "c", "h", '>', "EHLO x");
    log.write("0.1", "c", "h", '<', "250 ok");
    EXPECT_FALSE(fs::exists(path));  // buffered
    loop.timers().arm(stop, loop.now(), milliseconds(400));
  });
  loop.run();
  auto lines = lines_of(path);  // `log` still exists: only its timer can have written these
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[2].find("\t<\t250 ok"), std::string::npos);

  TempDir dir2;
  ProtocolLog full(nullptr, dir2.path.string(), 0);  // no loop: only the 64 KiB rule writes
  const std::string text(200, 'x');
  size_t n = 0;
  while (!fs::exists(full.path_for(SystemClock::instance().wall())) && n < 1000) {
    full.write("0.1", "c", "h", '>', text);
    ++n;
  }
  EXPECT_GT(n, 250u);  // ~240 octets a line: about 270 lines make 64 KiB
  EXPECT_LT(n, 300u);
}

TEST(ProtocolLog, MissingDirectoryDropsLinesAndWritesOnceItExists) {
  TempDir dir;
  const fs::path sub = dir.path / "gone";
  ProtocolLog log(nullptr, sub.string(), 1);
  log.write("1.1", "c", "h", '>', "EHLO lost");
  log.flush();  // cannot open: dropped, reported once, nothing thrown
  EXPECT_FALSE(fs::exists(sub));
  fs::create_directory(sub);
  log.write("1.1", "c", "h", '>', "EHLO kept");
  log.flush();
  auto lines = lines_of(log.path_for(SystemClock::instance().wall()));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[1].find("EHLO kept"), std::string::npos);
}

}  // namespace
}  // namespace ringmail::engine
