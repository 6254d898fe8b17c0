// Fuzz target: the outbound client's reply parser (engine/smtp/reply_parser.h), fed what a broken or
// hostile server might send. Feeding the bytes whole and in chunks must yield the same replies and
// the same error; every reply has a code in 200..599 and an enhanced code of its own class; the
// parser never holds more than one line's worth of carried-over bytes.
//
// Input: 1 byte chunk seed, then the server's byte stream.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/smtp/reply_parser.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_input.h"

using ringmail::smtp::Reply;
using ringmail::smtp::ReplyError;
using ringmail::smtp::ReplyParser;

namespace {

struct Parsed {
  std::vector<Reply> replies;
  ReplyError error = ReplyError::kNone;
  bool partial = false;
};

void check_reply(const Reply& r) {
  FUZZ_CHECK(r.code >= 200 && r.code <= 599);
  if (!r.enhanced.empty()) {
    FUZZ_CHECK(r.enhanced.size() >= 5 && r.enhanced.size() <= 11);
    FUZZ_CHECK(r.enhanced[0] - '0' == r.klass());
    FUZZ_CHECK(r.enhanced[1] == '.');
  }
}

Parsed parse(std::string_view stream, const std::vector<size_t>& ends) {
  ReplyParser p;
  Parsed out;
  size_t prev = 0;
  for (size_t end : ends) {
    std::string_view chunk = stream.substr(prev, end - prev);
    prev = end;
    while (true) {
      size_t before = chunk.size();
      auto st = p.parse(chunk);
      if (st == ReplyParser::Status::kReply) {
        check_reply(p.reply());
        out.replies.push_back(p.reply());
        FUZZ_CHECK(chunk.size() < before);
        continue;
      }
      if (st == ReplyParser::Status::kError) {
        out.error = p.error();
        FUZZ_CHECK(out.error != ReplyError::kNone);
        out.partial = p.partial();
        return out;
      }
      FUZZ_CHECK(chunk.empty());  // kNeedMore consumes everything
      break;
    }
  }
  out.partial = p.partial();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ringmail::fuzz::Input in(data, size);
  uint8_t seed = in.byte();
  std::string_view stream = in.rest();
  Parsed whole = parse(stream, {stream.size()});
  Parsed chunked = parse(stream, ringmail::fuzz::cut_points(stream.size(), seed));
  FUZZ_CHECK(whole.error == chunked.error);
  FUZZ_CHECK(whole.partial == chunked.partial);
  FUZZ_CHECK(whole.replies.size() == chunked.replies.size());
  for (size_t i = 0; i < whole.replies.size(); ++i) {
    FUZZ_CHECK(whole.replies[i].code == chunked.replies[i].code);
    FUZZ_CHECK(whole.replies[i].enhanced == chunked.replies[i].enhanced);
    FUZZ_CHECK(whole.replies[i].text == chunked.replies[i].text);
  }
  return 0;
}
