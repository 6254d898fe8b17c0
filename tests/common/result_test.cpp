#include "common/result.h"

#include <gtest/gtest.h>

namespace ringmail {
namespace {

Result<int> half(int x) {
  if (x % 2) return make_error("{} is odd", x);
  return x / 2;
}

TEST(Result, ValueAndError) {
  auto a = half(4);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, 2);
  auto b = half(3);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message(), "3 is odd");
  Status s;
  EXPECT_TRUE(s.ok());
  Status f = Error("broken");
  EXPECT_FALSE(f.ok());
  EXPECT_EQ(f.error().message(), "broken");
}

}  // namespace
}  // namespace ringmail
