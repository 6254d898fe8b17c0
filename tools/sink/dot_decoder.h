// The DATA phase of ringmail-sink: removes dot-stuffing (RFC 5321 §4.5.2) and finds the end of
// the message, which is CRLF "." CRLF and nothing else (a bare LF "." LF does not end it). Works on
// arbitrary splits of the input: the state survives between calls. Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ringmail::sink {

class DotDecoder {
 public:
  // Consumes DATA bytes up to and including the terminating ".\r\n". Appends the unstuffed message
  // to `body` when it is not null. Returns the number of bytes consumed; `*done` says whether the
  // terminator was among them (bytes after it belong to the next command).
  size_t feed(std::string_view in, std::string* body, bool* done);
  uint64_t size() const { return size_; }  // unstuffed message bytes so far
  void reset() { state_ = State::kLineStart; size_ = 0; }

 private:
  enum class State : uint8_t {
    kLineStart,  // after CRLF (or at the start): a "." here is stuffing or the terminator
    kDot,        // "." at the start of a line
    kDotCr,      // ".\r" at the start of a line: "\n" ends the message
    kMid,        // inside a line
    kCr,         // "\r" inside a line: "\n" completes CRLF
  };
  State state_ = State::kLineStart;  // see the enum
  uint64_t size_ = 0;                // unstuffed bytes emitted
};

}  // namespace ringmail::sink
