// Streams a message body as SMTP DATA content (RFC 5321 §4.5.2): doubles a "." at the start of
// every line and ends with <CRLF>.<CRLF>, producing bounded chunks into a reused output buffer so
// a large message is never copied whole. The body is not owned; line-end repair and 8-bit checks
// do not belong here.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ringmail::smtp {

class DotStuffer {
 public:
  // Starts on `body`: the unstuffed message with CRLF line ends, without the terminating ".".
  // The bytes must stay valid until finished().
  void start(std::string_view body);
  // Appends at most `max_bytes` (at least 1) octets of stuffed data, plus the terminator (at most
  // 5 octets) when the body is used up, to `out`. Returns true once the terminator is appended.
  bool produce(std::string& out, size_t max_bytes);
  bool finished() const { return finished_; }

 private:
  std::string_view body_;        // what is being sent
  size_t pos_ = 0;               // next byte of body_ to send
  bool at_line_start_ = true;    // the next byte starts a line (a "." there gets doubled)
  bool finished_ = true;         // the terminator was appended (true before start())
};

}  // namespace ringmail::smtp
