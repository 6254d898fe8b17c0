#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <string>

namespace ringmail {
namespace {

TEST(Crc32c, KnownVector) {
  // RFC 3720 B.4: CRC-32C of "123456789" is 0xE3069283.
  EXPECT_EQ(crc32c(0, "123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c(0, "", 0), 0u);
}

TEST(Crc32c, IncrementalEqualsWhole) {
  std::string s(1000, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 7 + 3);
  uint32_t whole = crc32c(0, s.data(), s.size());
  for (size_t split : {0u, 1u, 7u, 8u, 9u, 500u, 999u, 1000u}) {
    uint32_t c = crc32c(0, s.data(), split);
    c = crc32c(c, s.data() + split, s.size() - split);
    EXPECT_EQ(c, whole) << "split " << split;
  }
}

TEST(Crc32c, DetectsSingleBitFlip) {
  std::string s(64, 'a');
  uint32_t before = crc32c(0, s.data(), s.size());
  s[10] ^= 1;
  EXPECT_NE(crc32c(0, s.data(), s.size()), before);
}

}  // namespace
}  // namespace ringmail
