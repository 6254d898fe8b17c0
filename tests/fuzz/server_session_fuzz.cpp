// Fuzz target: the SMTP server session (engine/smtp/server_session.h), i.e. everything a client on
// the network can make the listener do. For any input:
//   - feeding it whole and in chunks gives the same replies, messages and close (without STARTTLS,
//     whose clear-text pipelining defence depends on chunking by design);
//   - every reply line is "ddd" + ' ' or '-' + printable ASCII text + CRLF, at most 512 octets
//     (no reply injection or 8-bit junk through echoed input);
//   - a message is committed only for a relay client or an authenticated one (never an open relay),
//     with 1..max_recipients recipients, no control octets in any address, and bounded size;
//   - buffered input stays bounded;
//   - rejections reported to the hooks (tracking log) are MAIL, RCPT or DATA with a 4xx/5xx reply
//     line that is also in the output, and are the same whole and chunked.
//
// Input: 1 byte of flags (relay client, TLS offered, TLS required, AUTH offered, small limits),
// 1 byte saying which commits fail, 1 byte chunk seed, then the client's byte stream.
// AUTH succeeds for user "user", password "pass" (AUTH PLAIN AHVzZXIAcGFzcw==).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "engine/smtp/server_session.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_input.h"

namespace smtp = ringmail::smtp;

namespace {

class Hooks final : public smtp::ServerHooks {
 public:
  std::string new_queue_id() override { return "Q" + std::to_string(++ids_); }
  ringmail::WallTime now() override { return ringmail::WallTime{std::chrono::seconds(1'800'000'000)}; }
  bool verify_credentials(std::string_view user, std::string_view password) override {
    return user == "user" && password == "pass";
  }
  void on_reject(std::string_view command, std::string_view argument, std::string_view reply) override {
    FUZZ_CHECK(command == "MAIL" || command == "RCPT" || command == "DATA");
    FUZZ_CHECK(reply.size() >= 4 && (reply[0] == '4' || reply[0] == '5'));
    FUZZ_CHECK(reply.find('\r') == std::string_view::npos && reply.find('\n') == std::string_view::npos);
    rejects.push_back(std::string(command) + "|" + std::string(argument) + "|" + std::string(reply));
  }
  std::vector<std::string> rejects;  // as reported, in order

 private:
  int ids_ = 0;
};

struct Run {
  std::string output;
  std::vector<std::string> rejects;  // Hooks::rejects
  std::vector<std::string> messages;
  bool closed = false;
  bool starttls = false;
};

bool has_control(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

void check_output(std::string_view o) {
  size_t start = 0;
  while (start < o.size()) {
    size_t end = o.find("\r\n", start);
    FUZZ_CHECK(end != std::string_view::npos);
    std::string_view line = o.substr(start, end - start);
    if (line.size() + 2 > 512) std::fprintf(stderr, "reply line of %zu octets: %.80s...\n", line.size(), line.data());
    FUZZ_CHECK(line.size() >= 3);
    FUZZ_CHECK(line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' && line[2] >= '0' &&
               line[2] <= '9');
    FUZZ_CHECK(line.size() == 3 || line[3] == ' ' || line[3] == '-');
    for (unsigned char c : line) FUZZ_CHECK(c >= 0x20 && c <= 0x7e);  // printable ASCII: no CR, LF, NUL, 8-bit
    FUZZ_CHECK(line.size() + 2 <= 512);                                 // RFC 5321 §4.5.3.1.5
    start = end + 2;
  }
}

Run run(const smtp::ServerConfig& config, const smtp::PeerInfo& peer, uint8_t fail_mask, std::string_view input,
        const std::vector<size_t>& ends, size_t max_chunk) {
  Hooks hooks;
  smtp::ServerSession s(config, peer, hooks);
  Run r;
  s.start(r.output);
  size_t commits = 0, prev = 0;
  for (size_t end : ends) {
    if (r.closed) break;
    smtp::Action a = s.on_input(input.substr(prev, end - prev), r.output);
    prev = end;
    while (true) {
      FUZZ_CHECK(s.buffered_input() <= config.limits.max_command_line + max_chunk + smtp::ServerSession::kMaxPendingInput);
      if (a == smtp::Action::kCommit) {
        const smtp::Envelope& env = s.envelope();
        FUZZ_CHECK(peer.relay_allowed || s.authenticated());
        FUZZ_CHECK(!env.rcpt_to.empty() && env.rcpt_to.size() <= config.limits.max_recipients);
        FUZZ_CHECK(!has_control(env.mail_from));
        for (const auto& rcpt : env.rcpt_to) FUZZ_CHECK(!has_control(rcpt));
        FUZZ_CHECK(!has_control(env.helo));
        FUZZ_CHECK(s.message().substr(0, 9) == "Received:");
        FUZZ_CHECK(s.message().size() <= config.limits.max_message_size + 4096);
        r.messages.emplace_back(s.message());
        bool ok = !(fail_mask >> (commits++ % 8) & 1);
        a = s.on_commit(ok, "disk full", r.output);
        continue;
      }
      if (a == smtp::Action::kStartTls) {
        r.starttls = true;
        a = s.on_tls_established({"TLSv1.3", "TLS_AES_256_GCM_SHA384"}, r.output);
        continue;
      }
      break;
    }
    if (a == smtp::Action::kClose) r.closed = true;
  }
  check_output(r.output);
  for (const auto& rej : hooks.rejects)  // each reported reply line was sent
    FUZZ_CHECK(r.output.find(rej.substr(rej.rfind('|') + 1) + "\r\n") != std::string::npos);
  r.rejects = std::move(hooks.rejects);
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    ringmail::log::set_level(ringmail::log::Level::kError);
    return true;
  }();
  (void)quiet;
  ringmail::fuzz::Input in(data, size);
  uint8_t flags = in.byte();
  uint8_t fail_mask = in.byte();
  uint8_t seed = in.byte();
  std::string_view input = in.rest();

  smtp::ServerConfig config;
  config.hostname = "mx.test";
  if (flags & 16) {
    config.limits.max_message_size = 300;
    config.limits.max_recipients = 2;
    config.limits.max_errors = 3;
  } else {
    config.limits.max_message_size = 20000;
    config.limits.max_recipients = 50;
  }
  config.security.tls_available = flags & 2;
  config.security.require_tls = flags & 4;
  config.security.auth_available = flags & 8;
  smtp::PeerInfo peer;
  peer.remote = *ringmail::SocketAddress::parse("192.0.2.1:40000");
  peer.relay_allowed = flags & 1;

  Run whole = run(config, peer, fail_mask, input, {input.size()}, input.size());
  auto ends = ringmail::fuzz::cut_points(input.size(), seed, 300);
  Run chunked = run(config, peer, fail_mask, input, ends, 300);
  if (!whole.starttls && !chunked.starttls) {
    FUZZ_CHECK(whole.output == chunked.output);
    FUZZ_CHECK(whole.messages == chunked.messages);
    FUZZ_CHECK(whole.closed == chunked.closed);
    FUZZ_CHECK(whole.rejects == chunked.rejects);
  }
  return 0;
}
