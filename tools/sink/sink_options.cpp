// Command-line parsing for ringmail-sink (see sink_options.h).
#include "tools/sink/sink_options.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>

namespace ringmail::sink {
namespace {

bool rate_ok(double r) { return r >= 0.0 && r <= 1.0; }

// Fills `reply` from the flag values; returns an error text or "".
std::string make_fault(const std::string& flag, const std::string& text, std::optional<double> rate,
                       const std::string& match, FaultReply* reply) {
  if (text.empty()) {
    if (rate || !match.empty()) return fmt::format("{}-fault-rate and {}-reply-match need {}-reply", flag, flag, flag);
    return "";
  }
  auto line = make_reply_line(text);
  if (!line) return fmt::format("{}-reply: {}", flag, line.error().message());
  reply->line = *line;
  reply->rate = rate.value_or(1.0);  // a reply without a rate applies to every eligible event
  reply->match = match;
  if (!rate_ok(reply->rate)) return fmt::format("{}-fault-rate must be between 0 and 1", flag);
  return "";
}

}  // namespace

std::optional<SinkOptions> parse_sink_options(int argc, char** argv, int* exit_code) {
  SinkOptions o;
  std::vector<std::string> listen;
  std::string rcpt_reply, data_reply, rcpt_match, data_match, greeting;
  std::optional<double> rcpt_rate, data_rate;
  bool no_pipelining = false, no_8bitmime = false, no_smtputf8 = false;
  CLI::App app{
      "ringmail-sink: an SMTP receiver for tests and benchmarks. Accepts and counts mail, optionally "
      "records it, and injects faults on demand. Nothing is delivered or stored beyond --record/--save-dir."};
  app.add_option("--listen", listen, "Address to listen on, IP:PORT or [IPv6]:PORT (repeatable; port 0 = any free)")
      ->required();
  app.add_option("--workers", o.workers, "Worker threads, each with its own io_uring and SO_REUSEPORT sockets")
      ->capture_default_str();
  app.add_option("--ready-file", o.ready_file,
                 "Once listening, write the bound addresses here, one per line (atomically, via rename)");
  app.add_option("--record", o.record_path,
                 "Append one JSON object per accepted message: queue_id, listen, client, mail_from, rcpts, "
                 "message_id, size, sha256, body_file");
  app.add_option("--save-dir", o.save_dir, "Save each accepted message's bytes (after dot-unstuffing) to DIR/<n>.eml");
  app.add_option("--rcpt-reply", rcpt_reply, "Reply to use instead of 250 for some RCPTs, e.g. \"451 4.3.0 Try later\"");
  app.add_option("--rcpt-fault-rate", rcpt_rate, "Fraction (0..1) of eligible RCPTs that get --rcpt-reply (default 1)");
  app.add_option("--rcpt-reply-match", rcpt_match, "Only recipients containing this substring are eligible");
  app.add_option("--data-reply", data_reply,
                 "Reply to use instead of 250 at the end of some DATAs, e.g. \"550 5.1.1 No such user\"");
  app.add_option("--data-fault-rate", data_rate, "Fraction (0..1) of eligible DATAs that get --data-reply (default 1)");
  app.add_option("--data-reply-match", data_match,
                 "Only transactions whose sender or a recipient contains this substring are eligible");
  app.add_option("--drop-mid-data-rate", o.faults.drop_mid_data_rate,
                 "Fraction (0..1) of DATAs after which the connection is closed once part of the message "
                 "arrived, without a reply")
      ->capture_default_str();
  app.add_option("--seed", o.faults.seed, "Seed of the deterministic fault selection")->capture_default_str();
  app.add_option("--greeting-reply", greeting,
                 "Refuse at the greeting with this reply, e.g. \"554 5.3.2 No service\" (then only QUIT is "
                 "answered; a 421 closes at once)");
  app.add_option("--delay-ms", o.delay_ms, "Wait this long before sending each batch of replies")->capture_default_str();
  app.add_flag("--no-pipelining", no_pipelining, "Do not advertise PIPELINING");
  app.add_flag("--no-8bitmime", no_8bitmime, "Do not advertise 8BITMIME");
  app.add_flag("--no-smtputf8", no_smtputf8, "Do not advertise SMTPUTF8");
  app.add_option("--max-message-size", o.responder.max_message_size,
                 "Advertised SIZE; larger messages get 552 5.3.4 (0 = unlimited)")
      ->capture_default_str();
  app.add_option("--hostname", o.responder.hostname, "Name in the greeting and EHLO reply")->capture_default_str();
  app.add_option("--tls-cert", o.tls_cert,
                 "PEM certificate chain; with --tls-key, STARTTLS is advertised and handled (checked at start)");
  app.add_option("--tls-key", o.tls_key, "PEM private key of --tls-cert");
  app.add_flag("--quiet", o.quiet, "No start-up line and no final summary line");
  app.add_option("--stats-interval", o.stats_interval_s, "Print a counters line to stdout every S seconds (0 = off)")
      ->capture_default_str();
  app.add_option("--stats-file", o.stats_file,
                 "Rewrite this file atomically with the counters (key=value lines) every second and at exit");
  app.add_option("--exit-after", o.exit_after, "Exit 0 after N messages were accepted (0 = run until SIGTERM/SIGINT)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return std::nullopt;
  }
  auto fail = [exit_code](const std::string& msg) {
    std::fprintf(stderr, "ringmail-sink: %s\n", msg.c_str());
    *exit_code = 2;
    return std::nullopt;
  };
  for (const auto& text : listen) {
    auto addr = SocketAddress::parse(text);
    if (!addr) return fail(fmt::format("--listen {}: {}", text, addr.error().message()));
    o.listen.push_back(*addr);
  }
  if (o.workers < 1 || o.workers > 256) return fail("--workers must be 1..256");
  if (!rate_ok(o.faults.drop_mid_data_rate)) return fail("--drop-mid-data-rate must be between 0 and 1");
  if (o.stats_interval_s < 0) return fail("--stats-interval must not be negative");
  if (auto e = make_fault("--rcpt", rcpt_reply, rcpt_rate, rcpt_match, &o.faults.rcpt); !e.empty()) return fail(e);
  if (auto e = make_fault("--data", data_reply, data_rate, data_match, &o.faults.data); !e.empty()) return fail(e);
  if (!greeting.empty()) {
    auto line = make_reply_line(greeting);
    if (!line) return fail("--greeting-reply: " + line.error().message());
    if ((*line)[0] == '2') return fail("--greeting-reply must be a refusal (4xx or 5xx)");
    o.responder.greeting_reply = *line;
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) return fail("--tls-cert and --tls-key go together");
  o.responder.starttls = !o.tls_cert.empty();
  o.responder.pipelining = !no_pipelining;
  o.responder.eight_bit_mime = !no_8bitmime;
  o.responder.smtputf8 = !no_smtputf8;
  o.responder.keep_body = !o.record_path.empty() || !o.save_dir.empty();
  return o;
}

}  // namespace ringmail::sink
