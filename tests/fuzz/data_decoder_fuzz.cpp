// Fuzz target: the DATA decoder (engine/smtp/data_decoder.h) against a plain reference decoder
// written from RFC 5321 §4.1.1.4/§4.5.2 here, line by line: the end is only <CRLF>.<CRLF>, a
// leading dot is dropped, and the findings (bare CR or LF, NUL, long line, too big) are reported in
// the decoder's order of precedence. The decoder must agree with the reference on where the data
// ends, its size, the verdict and, when accepted, every byte; feeding the input in chunks must give
// the same as feeding it whole; and the stored bytes never exceed the size limit.
//
// Input: 2 bytes max line length, 2 bytes max message size, 1 byte chunk seed, then the DATA stream.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/smtp/data_decoder.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_input.h"

using ringmail::smtp::DataDecoder;
using ringmail::smtp::DataVerdict;

namespace {

struct Reference {
  bool done = false;
  size_t consumed = 0;  // through the final ".\r\n" when done
  std::string message;  // unstuffed, when done
  uint64_t size = 0;
  DataVerdict verdict = DataVerdict::kAccept;
};

Reference reference_decode(std::string_view in, uint64_t max_size, size_t max_line) {
  Reference r;
  bool bare = false, nul = false, long_line = false;
  size_t pos = 0;  // start of a line: offset 0 or just after a CRLF
  while (true) {
    size_t crlf = in.find("\r\n", pos);
    if (crlf == std::string_view::npos) return r;  // the end is not in the input
    if (crlf == pos + 1 && in[pos] == '.') {
      r.done = true;
      r.consumed = crlf + 2;
      break;
    }
    std::string_view line = in.substr(pos, crlf + 2 - pos);  // as sent, with its CRLF
    if (line.size() > max_line) long_line = true;
    std::string_view content = line;
    if (content.front() == '.') content.remove_prefix(1);  // dot-stuffing
    for (size_t i = 0; i + 2 < content.size(); ++i) {  // content ends with its CRLF
      if (content[i] == '\r' || content[i] == '\n') bare = true;
      if (content[i] == '\0') nul = true;
    }
    r.message.append(content);
    pos = crlf + 2;
  }
  r.size = r.message.size();
  if (bare) r.verdict = DataVerdict::kBareLineEnd;
  else if (nul) r.verdict = DataVerdict::kNul;
  else if (long_line) r.verdict = DataVerdict::kLongLine;
  else if (r.size > max_size) r.verdict = DataVerdict::kTooBig;
  return r;
}

struct Decoded {
  bool done = false;
  size_t consumed = 0;
  std::string message;
  uint64_t size = 0;
  DataVerdict verdict = DataVerdict::kAccept;
};

Decoded decode(std::string_view in, uint64_t max_size, size_t max_line, const std::vector<size_t>* ends) {
  DataDecoder d;
  d.reset(max_size, max_line);
  Decoded out;
  size_t prev = 0;
  std::vector<size_t> whole{in.size()};
  for (size_t end : ends ? *ends : whole) {
    size_t n = d.feed(in.substr(prev, end - prev), out.message);
    FUZZ_CHECK(n <= end - prev);
    out.consumed += n;
    if (d.done()) break;
    FUZZ_CHECK(n == end - prev);  // not done: everything offered is consumed
    prev = end;
  }
  out.done = d.done();
  out.size = d.size();
  out.verdict = d.verdict();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ringmail::fuzz::Input in(data, size);
  size_t max_line = 1 + in.u16() % 1100;
  uint64_t max_size = in.u16();
  uint8_t seed = in.byte();
  std::string_view stream = in.rest();

  Reference ref = reference_decode(stream, max_size, max_line);
  Decoded whole = decode(stream, max_size, max_line, nullptr);
  auto ends = ringmail::fuzz::cut_points(stream.size(), seed);
  Decoded chunked = decode(stream, max_size, max_line, &ends);

  FUZZ_CHECK(whole.done == ref.done);
  FUZZ_CHECK(chunked.done == whole.done);
  FUZZ_CHECK(chunked.consumed == whole.consumed);
  FUZZ_CHECK(chunked.size == whole.size);
  FUZZ_CHECK(chunked.verdict == whole.verdict);
  // What is stored once a finding is made depends on where the chunks end, and is never used.
  if (whole.verdict == DataVerdict::kAccept) FUZZ_CHECK(chunked.message == whole.message);
  // Stored bytes never exceed the limit, whatever the verdict.
  FUZZ_CHECK(whole.message.size() <= max_size);
  if (!ref.done) {
    FUZZ_CHECK(whole.consumed == stream.size());
    return 0;
  }
  FUZZ_CHECK(whole.consumed == ref.consumed);
  FUZZ_CHECK(whole.size == ref.size);
  FUZZ_CHECK(whole.verdict == ref.verdict);
  if (ref.verdict == DataVerdict::kAccept) FUZZ_CHECK(whole.message == ref.message);
  return 0;
}
