// --worker-cpus and --max-message-size values: what parses, what is refused with which message.
#include "engine/daemon/options.h"

#include <gtest/gtest.h>

namespace ringmail::engine {
namespace {

std::vector<int> cpus(std::string_view text) {
  auto r = parse_cpu_list(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : std::vector<int>{};
}

std::string refusal(std::string_view text) {
  auto r = parse_cpu_list(text);
  EXPECT_FALSE(r.ok()) << text << " was accepted";
  return r.ok() ? "" : r.error().message();
}

TEST(CpuList, NumbersRangesAndTheirOrder) {
  EXPECT_EQ(cpus("1"), (std::vector<int>{1}));
  EXPECT_EQ(cpus("0-3"), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(cpus("0,2,4-6"), (std::vector<int>{0, 2, 4, 5, 6}));
  EXPECT_EQ(cpus("3,1"), (std::vector<int>{3, 1})) << "worker 0 gets the first CPU listed";
  EXPECT_EQ(cpus(" 1 , 2 "), (std::vector<int>{1, 2}));
}

TEST(CpuList, BadListsAreRefusedWithTheReason) {
  EXPECT_NE(refusal("").find("empty"), std::string::npos);
  EXPECT_NE(refusal("x").find("bad CPU 'x'"), std::string::npos);
  EXPECT_NE(refusal("-1").find("bad CPU range"), std::string::npos);
  EXPECT_NE(refusal("3-1").find("bad CPU range '3-1'"), std::string::npos);
  EXPECT_NE(refusal("1,").find("empty item"), std::string::npos);
  EXPECT_NE(refusal("1,1").find("CPU 1 is listed twice"), std::string::npos);
  EXPECT_NE(refusal("0-2,2").find("listed twice"), std::string::npos);
  EXPECT_NE(refusal("99999").find("bad CPU"), std::string::npos);
  EXPECT_NE(refusal("1.5").find("bad CPU"), std::string::npos);
}

TEST(SizeFlag, UnitsAndErrors) {
  EXPECT_EQ(*parse_size("35MB"), 35ull << 20);
  EXPECT_EQ(*parse_size("512"), 512u);
  EXPECT_EQ(*parse_size("2 GiB"), 2ull << 30);
  EXPECT_FALSE(parse_size("12 parsecs").ok());
  EXPECT_FALSE(parse_size("").ok());
}

}  // namespace
}  // namespace ringmail::engine
