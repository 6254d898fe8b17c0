// Tests of the DATA decoder: the only valid end of data, dot-unstuffing, bare CR/LF (SMTP smuggling),
// NUL, long lines and size, each fed whole and one byte at a time.
#include "engine/smtp/data_decoder.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ringmail::smtp {
namespace {

struct Decoded {
  bool done = false;
  size_t consumed = 0;
  std::string message;
  DataVerdict verdict = DataVerdict::kAccept;
};

Decoded decode(const std::string& input, size_t chunk, uint64_t max_size = 1000, size_t max_line = 20) {
  DataDecoder d;
  d.reset(max_size, max_line);
  Decoded r;
  for (size_t pos = 0; pos < input.size() && !d.done(); pos += chunk) {
    std::string_view piece = std::string_view(input).substr(pos, chunk);
    size_t used = d.feed(piece, r.message);
    r.consumed += used;
    if (used < piece.size()) {
      EXPECT_TRUE(d.done()) << "stopped early without reaching the end";
    }
  }
  r.done = d.done();
  r.verdict = d.verdict();
  return r;
}

struct Case {
  std::string name;
  std::string input;
  bool done;
  size_t consumed;  // SIZE_MAX: all of the input
  std::string message;
  DataVerdict verdict;
};

TEST(DataDecoder, Table) {
  const std::vector<Case> cases = {
      {"empty message", ".\r\nNEXT", true, 3, "", DataVerdict::kAccept},
      {"one line", "Hi\r\n.\r\n", true, SIZE_MAX, "Hi\r\n", DataVerdict::kAccept},
      {"stops after the end", "a\r\n.\r\nMAIL FROM:<x@y>\r\n", true, 6, "a\r\n", DataVerdict::kAccept},
      {"dot-unstuffing", "..a\r\n..\r\n.b\r\n...\r\n.\r\n", true, SIZE_MAX, ".a\r\n.\r\nb\r\n..\r\n",
       DataVerdict::kAccept},
      {"dot inside a line stays", "a.b\r\n a\r\n.\r\n", true, SIZE_MAX, "a.b\r\n a\r\n", DataVerdict::kAccept},
      {"not finished", "abc\r\n.", false, SIZE_MAX, "abc\r\n", DataVerdict::kAccept},
      {"not finished after dot CR", "abc\r\n.\r", false, SIZE_MAX, "abc\r\n", DataVerdict::kAccept},
      {"LF.LF does not end", "a\n.\nb\r\n.\r\n", true, SIZE_MAX, "a", DataVerdict::kBareLineEnd},
      {"CRLF.LF does not end", "a\r\n.\nb\r\n.\r\n", true, SIZE_MAX, "a\r\n", DataVerdict::kBareLineEnd},
      {"LF.CRLF does not end", "a\n.\r\nb\r\n.\r\n", true, SIZE_MAX, "a", DataVerdict::kBareLineEnd},
      {"CR.CR does not end", "a\r.\rb\r\n.\r\n", true, SIZE_MAX, "a", DataVerdict::kBareLineEnd},
      {"CRLF.CR x does not end", "a\r\n.\rx\r\n.\r\n", true, SIZE_MAX, "a\r\n", DataVerdict::kBareLineEnd},
      {"bare LF alone", "a\nb\r\n.\r\n", true, SIZE_MAX, "a", DataVerdict::kBareLineEnd},
      {"bare CR alone", "a\rb\r\n.\r\n", true, SIZE_MAX, "a", DataVerdict::kBareLineEnd},
      {"CR CR LF", "a\r\r\n.\r\n", true, SIZE_MAX, "a", DataVerdict::kBareLineEnd},
      {"line of 20 with CRLF fits", std::string(18, 'x') + "\r\n.\r\n", true, SIZE_MAX, std::string(18, 'x') + "\r\n",
       DataVerdict::kAccept},
      {"line of 21 is too long", std::string(19, 'x') + "\r\n.\r\n", true, SIZE_MAX, "", DataVerdict::kLongLine},
      {"stuffed dot counts in line length", "." + std::string(18, 'x') + "\r\n.\r\n", true, SIZE_MAX, "",
       DataVerdict::kLongLine},
      {"bare CR wins over long line", std::string(30, 'x') + "\r\ra\r\n.\r\n", true, SIZE_MAX, "",
       DataVerdict::kBareLineEnd},
  };
  for (const auto& c : cases) {
    for (size_t chunk : {c.input.size() + 1, size_t{1}, size_t{2}, size_t{3}}) {
      Decoded r = decode(c.input, chunk);
      EXPECT_EQ(r.done, c.done) << c.name << " chunk " << chunk;
      EXPECT_EQ(r.consumed, c.consumed == SIZE_MAX ? c.input.size() : c.consumed) << c.name << " chunk " << chunk;
      // What a refused message left in the buffer is never used; only accepted data is compared.
      if (c.verdict == DataVerdict::kAccept) {
        EXPECT_EQ(r.message, c.message) << c.name << " chunk " << chunk;
      }
      EXPECT_LE(r.message.size(), c.input.size()) << c.name;
      EXPECT_EQ(static_cast<int>(r.verdict), static_cast<int>(c.verdict)) << c.name << " chunk " << chunk;
    }
  }
}

TEST(DataDecoder, NulIsFound) {
  const std::string input("a\0b\r\n.\r\n", 8);
  for (size_t chunk : {size_t{100}, size_t{1}}) {
    Decoded r = decode(input, chunk);
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.verdict, DataVerdict::kNul);
    EXPECT_EQ(r.message, "a");
  }
}

TEST(DataDecoder, SizeLimitCountsUnstuffedOctetsAndStopsStoring) {
  // 10 lines of "..xxxxxxx\r\n": 11 octets sent, 10 stored each.
  std::string input;
  for (int i = 0; i < 10; ++i) input += "..xxxxxxx\r\n";
  input += ".\r\n";
  Decoded fits = decode(input, 7, 100, 1000);
  EXPECT_EQ(fits.verdict, DataVerdict::kAccept);
  EXPECT_EQ(fits.message.size(), 100u);
  Decoded over = decode(input, 7, 99, 1000);
  EXPECT_TRUE(over.done);
  EXPECT_EQ(over.verdict, DataVerdict::kTooBig);
  EXPECT_LE(over.message.size(), 99u);
}

// Fed whole, ordinary lines go through the decoder's run fast path; fed one byte at a time they
// never do (the fast path needs the CR, LF and the next byte in one piece). Random inputs over
// the bytes that matter must decode the same both ways and in random pieces.
TEST(DataDecoder, FastPathAgreesWithByteAtATime) {
  std::mt19937 rng(20261128);
  const std::string alphabet("ab.\r\n\r\n\0 ", 10);
  size_t finished = 0;
  for (int n = 0; n < 3000; ++n) {
    std::string input;
    const size_t len = rng() % 120;
    for (size_t i = 0; i < len; ++i) {
      // Mostly well-formed lines, so that runs of several lines and the end marker occur.
      if (rng() % 4 == 0) input += alphabet[rng() % alphabet.size()];
      else input += (rng() % 3 == 0) ? std::string("\r\n") : std::string(rng() % 9, 'x');
    }
    if (rng() % 2) input += "\r\n.\r\n";
    const uint64_t max_size = 20 + rng() % 200;
    const size_t max_line = 4 + rng() % 30;
    const Decoded ref = decode(input, 1, max_size, max_line);
    for (size_t chunk : {input.size() + 1, size_t{2} + rng() % 16}) {
      const Decoded got = decode(input, chunk, max_size, max_line);
      ASSERT_EQ(got.done, ref.done) << testing::PrintToString(input) << " chunk " << chunk;
      ASSERT_EQ(got.consumed, ref.consumed) << testing::PrintToString(input) << " chunk " << chunk;
      ASSERT_EQ(static_cast<int>(got.verdict), static_cast<int>(ref.verdict))
          << testing::PrintToString(input) << " chunk " << chunk;
      if (ref.verdict == DataVerdict::kAccept) {
        ASSERT_EQ(got.message, ref.message) << testing::PrintToString(input);
      }
    }
    finished += ref.done ? 1 : 0;
  }
  EXPECT_GT(finished, 1000u);  // the end of data was reached often enough to test it
}

}  // namespace
}  // namespace ringmail::smtp
