// JSON quoting: escapes, UTF-8 kept, and anything that is not valid UTF-8 (stray, truncated,
// overlong, surrogate, beyond U+10FFFF) replaced, so the output parses whatever bytes came in.
// Message-ID extraction from a header section.
#include "common/text_io.h"

#include <gtest/gtest.h>

namespace ringmail {
namespace {

TEST(JsonQuote, EscapesControlsQuotesAndBackslashes) {
  EXPECT_EQ(json_quote(std::string_view("a\"b\\c\r\n\t\x01\x7f", 10)), "\"a\\\"b\\\\c\\r\\n\\t\\u0001\\u007f\"");
  EXPECT_EQ(json_quote(std::string_view("\0", 1)), "\"\\u0000\"");
}

TEST(JsonQuote, KeepsValidUtf8) {
  EXPECT_EQ(json_quote("b\xc3\xbc" "cher \xe2\x82\xac \xf0\x9f\x93\xa7"), "\"b\xc3\xbc" "cher \xe2\x82\xac \xf0\x9f\x93\xa7\"");
}

TEST(JsonQuote, ReplacesInvalidUtf8) {
  EXPECT_EQ(json_quote("a\xff" "b"), "\"a\\ufffdb\"");                 // never valid
  EXPECT_EQ(json_quote("a\xc3"), "\"a\\ufffd\"");                      // truncated at the end
  EXPECT_EQ(json_quote("\xc3(x"), "\"\\ufffd(x\"");                    // bad continuation
  EXPECT_EQ(json_quote("\xc0\xaf"), "\"\\ufffd\\ufffd\"");             // overlong '/'
  EXPECT_EQ(json_quote("\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\"");  // overlong, three octets
  EXPECT_EQ(json_quote("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
  EXPECT_EQ(json_quote("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // above U+10FFFF
}

TEST(MessageIdOf, HeaderSectionOnlyUnfoldedAnyCase) {
  EXPECT_EQ(message_id_of("Subject: x\r\nmessage-id:  <a@b>\r\n\r\nbody"), "<a@b>");
  EXPECT_EQ(message_id_of("Message-ID:\r\n <folded@b>\r\nX: y\r\n\r\n"), "<folded@b>");
  EXPECT_EQ(message_id_of("Subject: x\r\n\r\nMessage-ID: <in-body@b>\r\n"), "");
  EXPECT_EQ(message_id_of("Received: from a\r\n\tby b\r\nMessage-Id: <c@d>\r\n\r\n"), "<c@d>");
  EXPECT_EQ(message_id_of(""), "");
}

}  // namespace
}  // namespace ringmail
