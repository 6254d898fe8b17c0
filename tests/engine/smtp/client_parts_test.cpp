// Tests of the client's small parts: EHLO capability parsing and streaming dot-stuffing.
#include <gtest/gtest.h>

#include <string>

#include "engine/smtp/client_capabilities.h"
#include "engine/smtp/client_dot_stuffer.h"

namespace ringmail::smtp {
namespace {

TEST(ClientCapabilities, ParsesKeywordsCaseInsensitively) {
  Reply r{250, "",
          "mx.test Hello [192.0.2.1]\npipelining\nSIZE 35882577\n8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES\n"
          "STARTTLS\nAUTH PLAIN LOGIN\nDSN\nCHUNKING\nX-UNKNOWN foo"};
  ServerCapabilities c = parse_ehlo_capabilities(r);
  EXPECT_TRUE(c.esmtp);
  EXPECT_TRUE(c.pipelining);
  EXPECT_TRUE(c.size);
  EXPECT_EQ(c.max_size, 35882577u);
  EXPECT_TRUE(c.eight_bit_mime);
  EXPECT_TRUE(c.smtputf8);
  EXPECT_TRUE(c.enhanced_status_codes);
  EXPECT_TRUE(c.starttls);
  EXPECT_TRUE(c.dsn);
  EXPECT_TRUE(c.chunking);
  EXPECT_EQ(c.auth_mechanisms, "PLAIN LOGIN");
}

TEST(ClientCapabilities, GreetingLineIsNotAKeywordAndBadSizeMeansNoLimit) {
  ServerCapabilities c = parse_ehlo_capabilities(Reply{250, "", "PIPELINING\nSIZE\nXSIZE 10"});
  EXPECT_FALSE(c.pipelining);  // first line is the server's name, whatever it says
  EXPECT_TRUE(c.size);
  EXPECT_EQ(c.max_size, 0u);
  EXPECT_EQ(parse_ehlo_capabilities(Reply{250, "", "x\nSIZE 12abc"}).max_size, 0u);
  ServerCapabilities bare = parse_ehlo_capabilities(Reply{250, "", "mx.test"});
  EXPECT_TRUE(bare.esmtp);
  EXPECT_FALSE(bare.pipelining || bare.size || bare.eight_bit_mime || bare.smtputf8);
}

std::string stuff_all(std::string_view body, size_t chunk) {
  DotStuffer s;
  s.start(body);
  std::string out;
  int rounds = 0;
  while (!s.produce(out, chunk)) {
    EXPECT_LT(++rounds, 100000);
  }
  EXPECT_TRUE(s.finished());
  return out;
}

TEST(DotStuffer, DoublesLeadingDotsAndTerminates) {
  struct Case {
    const char* body;
    const char* want;
  };
  const Case cases[] = {
      {"", ".\r\n"},
      {"a\r\n", "a\r\n.\r\n"},
      {".\r\n", "..\r\n.\r\n"},
      {".hidden\r\n..two\r\nmid.dle\r\n.\r\n", "..hidden\r\n...two\r\nmid.dle\r\n..\r\n.\r\n"},
      {"no final line end", "no final line end\r\n.\r\n"},
      {"x\r\n.", "x\r\n..\r\n.\r\n"},
  };
  for (const auto& c : cases) {
    for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{65536}}) {
      EXPECT_EQ(stuff_all(c.body, chunk), c.want) << c.body << " chunk " << chunk;
    }
  }
}

TEST(DotStuffer, OutputPerStepIsBounded) {
  std::string body;
  for (int i = 0; i < 2000; ++i) body += i % 3 == 0 ? ".line with a dot\r\n" : "an ordinary line of text\r\n";
  DotStuffer s;
  s.start(body);
  std::string all;
  size_t steps = 0;
  for (;;) {
    std::string out;
    bool done = s.produce(out, 1000);
    EXPECT_LE(out.size(), 1000u + 5);
    all += out;
    ++steps;
    if (done) break;
  }
  EXPECT_GT(steps, body.size() / 1000);
  EXPECT_EQ(all, stuff_all(body, 1u << 20));
}

}  // namespace
}  // namespace ringmail::smtp
