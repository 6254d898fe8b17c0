// SMTP reply reading for ringmail-inject: turns received bytes into complete (possibly multi-line)
// replies, and pulls out the facts the injector needs (EHLO capabilities, "queued as" id).
// Pure byte handling: no sockets, no clocks. The daemon's own SMTP parser lives in engine/.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ringmail::inject {

// One complete SMTP reply.
struct Reply {
  int code = 0;          // 3-digit reply code, e.g. 250
  std::string last_line; // text after "ddd " / "ddd-" of the final line
  std::string all_text;  // text of every line joined with '\n' (for EHLO keywords)
};

// What feeding bytes produced.
enum class ReadStatus {
  kNeedMore,   // no complete reply yet; keep the bytes and feed more
  kReply,      // *out holds a complete reply
  kMalformed,  // the peer sent something that is not an SMTP reply; drop the connection
};

// Accumulates bytes and yields replies one at a time. Lines longer than kMaxLine are malformed.
class ReplyReader {
 public:
  static constexpr size_t kMaxLine = 4096;   // RFC 5321 allows 512; be lenient
  static constexpr size_t kMaxLines = 1000;  // lines in one multi-line reply

  // Appends received bytes.
  void feed(std::string_view bytes) { buf_.append(bytes); }
  // Takes the next complete reply out of the buffer if there is one.
  ReadStatus next(Reply* out);
  // Bytes received but not yet consumed.
  size_t buffered() const { return buf_.size() - pos_; }
  void clear() { buf_.clear(); pos_ = 0; lines_ = 0; pending_ = Reply{}; }

 private:
  std::string buf_;    // received bytes; [pos_, end) not yet consumed
  size_t pos_ = 0;     // start of the first unconsumed line
  size_t lines_ = 0;   // lines of the reply being assembled
  Reply pending_;      // the multi-line reply being assembled
};

// The capabilities of an EHLO reply the injector cares about.
struct Capabilities {
  bool pipelining = false;  // RFC 2920
  bool eightbitmime = false;  // RFC 6152
  bool size = false;        // RFC 1870 (any SIZE line)
  bool starttls = false;    // RFC 3207
};
Capabilities parse_ehlo_capabilities(const Reply& ehlo_reply);

// The queue id of a 250 reply: the last whitespace-separated token after "queued as"
// (case-insensitive), or "" when the text has no such phrase.
std::string_view queued_as_id(std::string_view reply_text);

}  // namespace ringmail::inject
