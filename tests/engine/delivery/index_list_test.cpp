// IndexList: inline up to three indices, heap beyond; copies and moves keep the contents.
#include "engine/delivery/index_list.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace ringmail::engine {
namespace {

TEST(IndexList, InlineAndHeapListsRoundTrip) {
  for (size_t n : {0u, 1u, 3u, 4u, 100u}) {
    std::vector<uint32_t> v;
    for (uint32_t i = 0; i < n; ++i) v.push_back(i * 7 + 1);
    IndexList l(v);
    EXPECT_EQ(l.size(), n);
    EXPECT_EQ(l.to_vector(), v);
    IndexList copy = l;
    EXPECT_EQ(copy.to_vector(), v);
    IndexList moved = std::move(copy);
    EXPECT_EQ(moved.to_vector(), v);
    EXPECT_TRUE(copy.empty());  // NOLINT: moved-from is empty by contract
    IndexList assigned(std::vector<uint32_t>{9, 9, 9, 9, 9});
    assigned = l;
    EXPECT_EQ(assigned.to_vector(), v);
    assigned = std::move(moved);
    EXPECT_EQ(assigned.to_vector(), v);
    if (n > 0) {
      EXPECT_EQ(l[n - 1], v[n - 1]);
    }
  }
}

TEST(IndexList, StaysSmall) {
  EXPECT_LE(sizeof(IndexList), 24u);  // a queued work item is a message pointer plus this
}

}  // namespace
}  // namespace ringmail::engine
