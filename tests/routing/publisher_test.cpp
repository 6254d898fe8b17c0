// Tests of routing/publisher.cpp: readers on several threads never see a torn or freed table
// while reloads run in a loop (run under ThreadSanitizer too), and a bad reload keeps the old one.
#include "routing/publisher.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

namespace ringmail::routing {
namespace {

// Generation g routes *.example.com to "gen-g" and check.example.com to "check-g"; a reader that
// sees "gen-g" with "check-h" (g != h) in one snapshot would have seen a torn table.
std::shared_ptr<const Table> generation_table(int g) {
  std::string text = fmt::format(R"(
[[connector]]
name = "gen-{0}"
address_spaces = ["*.example.com"]
[[connector]]
name = "check-{0}"
address_spaces = ["check.example.com", "*.pad{0}.example"]
)",
                                 g);
  auto config = load_connector_text(text, "gen.toml");
  EXPECT_TRUE(config.ok());
  auto table = Table::build(*config, NodeIdentity{"mx1", {}});
  EXPECT_TRUE(table.ok());
  return *table;
}

int generation_of(const Connector* c, std::string_view prefix) {
  if (c == nullptr || !std::string_view(c->name).starts_with(prefix)) return -1;
  return std::atoi(c->name.c_str() + prefix.size());
}

TEST(TablePublisher, ReadersNeverSeeTornOrFreedTablesDuringReloads) {
  constexpr int kReaders = 3;
  constexpr int kLockstepGenerations = 3;   // first reloads wait until every reader saw them
  constexpr int kMaxGenerations = 400;      // bound on the free-running part
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);

  TablePublisher publisher(generation_table(0));
  std::atomic<bool> stop{false};
  std::atomic<int> acknowledged[kReaders];
  for (auto& a : acknowledged) a = 0;
  std::atomic<int> failures{0};
  std::vector<int> distinct_seen(kReaders, 0);

  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      TableReader reader(publisher);
      int last = -1;
      while (!stop.load(std::memory_order_relaxed)) {
        reader.refresh();  // top of the "loop iteration"
        Selection a, b;
        int g = generation_of(reader.table().select("x.example.com", 10, &a), "gen-");
        int h = generation_of(reader.table().select("check.example.com", 10, &b), "check-");
        if (g < 0 || g != h || g < last) failures.fetch_add(1);
        if (g != last) ++distinct_seen[r];
        last = g;
        acknowledged[r].store(g, std::memory_order_release);
      }
    });
  }

  int published = 0;
  for (int g = 1; g <= kMaxGenerations && std::chrono::steady_clock::now() < deadline; ++g) {
    publisher.publish(generation_table(g));
    published = g;
    if (g <= kLockstepGenerations) {
      for (auto& a : acknowledged) {
        while (a.load(std::memory_order_acquire) < g && std::chrono::steady_clock::now() < deadline)
          std::this_thread::yield();
      }
    }
  }
  stop = true;
  for (std::thread& t : readers) t.join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(published, kLockstepGenerations);
  EXPECT_EQ(publisher.version(), 1u + published);
  for (int r = 0; r < kReaders; ++r) EXPECT_GE(distinct_seen[r], kLockstepGenerations) << r;  // 1..3 at least
}

TEST(TablePublisher, RefreshTakesANewTableOnlyWhenTheVersionChanged) {
  TablePublisher publisher(generation_table(1));
  TableReader reader(publisher);
  const Table* first = &reader.table();
  EXPECT_FALSE(reader.refresh());
  EXPECT_EQ(&reader.table(), first);
  publisher.publish(generation_table(2));
  EXPECT_EQ(&reader.table(), first);  // unchanged until the reader refreshes
  EXPECT_TRUE(reader.refresh());
  EXPECT_NE(&reader.table(), first);
  Selection s;
  EXPECT_EQ(reader.table().select("a.example.com", 1, &s)->name, "gen-2");
}

TEST(TablePublisher, OldTablesAreFreedByThePublisherNotByReaders) {
  TablePublisher publisher(generation_table(1));
  TableReader reader(publisher);
  std::weak_ptr<const Table> first = reader.snapshot();
  publisher.publish(generation_table(2));
  EXPECT_EQ(publisher.reclaim(), 1u);  // the reader still holds generation 1
  EXPECT_TRUE(reader.refresh());
  EXPECT_FALSE(first.expired());       // dropping its reference did not free it on the reader
  EXPECT_EQ(publisher.reclaim(), 0u);
  EXPECT_TRUE(first.expired());
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ringmail-routing-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(std::string_view name, std::string_view text) const {
    std::string p = path_ + "/" + std::string(name);
    std::ofstream(p) << text;
    return p;
  }

 private:
  std::string path_;  // the directory, removed with its contents
};

TEST(ReloadConnectorFile, InvalidFileKeepsTheOldTable) {
  TempDir dir;
  TablePublisher publisher(generation_table(1));
  TableReader reader(publisher);
  std::string good = dir.file("good.toml", "[[connector]]\nname = \"new\"\naddress_spaces = [\"*\"]\n");
  std::string bad = dir.file("bad.toml", "[[connector]]\nname = \"x\"\naddress_spaces = [\"a.*.b\"]\n");

  ReloadOutcome refused = reload_connector_file(bad, NodeIdentity{"mx1", {}}, &publisher);
  EXPECT_FALSE(refused.published);
  ASSERT_EQ(refused.errors.size(), 1u);
  EXPECT_EQ(refused.errors[0], bad + ":3: connector 'x': bad pattern 'a.*.b': '*' is only "
                                     "allowed as the first label");
  EXPECT_FALSE(reader.refresh());
  Selection s;
  EXPECT_EQ(reader.table().select("a.example.com", 1, &s)->name, "gen-1");

  ReloadOutcome accepted = reload_connector_file(good, NodeIdentity{"mx1", {}}, &publisher);
  EXPECT_TRUE(accepted.published);
  EXPECT_TRUE(accepted.errors.empty());
  EXPECT_TRUE(reader.refresh());
  EXPECT_EQ(reader.version(), accepted.version);
  EXPECT_EQ(reader.table().select("a.example.com", 1, &s)->name, "new");
}

}  // namespace
}  // namespace ringmail::routing
