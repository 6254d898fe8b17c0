// Test messages for ringmail-inject: envelope recipients from a format string, and message text
// (headers, a unique Message-ID, printable body lines padded to a size) plus SMTP dot-stuffing.
// One MessageBuilder per worker thread; it reuses the caller's buffers, so nothing here touches I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace ringmail::inject {

// What every generated message looks like.
struct MessageSpec {
  std::string from = "inject@example.net";      // envelope sender and From: header
  std::string to_format = "user{n}@example.com";  // {n} recipient counter, {m} message, {r} index
  int rcpts = 1;                                  // envelope recipients per message
  int domains = 0;                                // >0: recipient domain becomes d{k}.example.com
  size_t size = 5000;                             // approximate message size in bytes (before stuffing)
  bool eightbit = false;                          // add a UTF-8 body line and 8bit MIME headers
};

class MessageBuilder {
 public:
  // seed feeds the random part of Message-IDs; pid is the process id shown in them.
  MessageBuilder(MessageSpec spec, uint64_t seed, long pid);

  const MessageSpec& spec() const { return spec_; }
  // Appends envelope recipient `index` of message `number` to *out.
  void append_recipient(uint64_t number, int index, std::string* out) const;
  // Writes message `number` (CRLF lines, not dot-stuffed) to *out and its Message-ID, angle
  // brackets included, to *message_id. `date` is the Date: header value.
  void build(uint64_t number, std::string_view date, std::string* out, std::string* message_id);

 private:
  uint64_t next_random();

  MessageSpec spec_;     // the shape of every message
  uint64_t rng_;         // xorshift64* state for Message-ID uniqueness across runs
  long pid_;             // shown in Message-IDs
  std::string filler_;   // printable 78-byte CRLF lines used to pad bodies
};

// Appends `raw` to *out with every line that starts with '.' doubled (RFC 5321 §4.5.2), a
// final CRLF if `raw` lacks one, and the terminating ".\r\n". Bare LF line ends become CRLF.
void append_dot_stuffed(std::string_view raw, std::string* out);

// An RFC 5322 date ("Sat, 28 Nov 2026 02:49:20 +0000") for t, in UTC.
std::string rfc5322_date(std::time_t t);

}  // namespace ringmail::inject
