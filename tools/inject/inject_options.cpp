// Command-line parsing for ringmail-inject (see inject_options.h).
#include "tools/inject/inject_options.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>

namespace ringmail::inject {
namespace {

// Checks what CLI11 cannot express; returns an error text or "".
std::string validate(const InjectOptions& o) {
  if (o.count == 0) return "--count must be at least 1";
  if (o.connections < 1 || o.connections > 100000) return "--connections must be 1..100000";
  if (o.threads < 1 || o.threads > 256) return "--threads must be 1..256";
  if (o.message.rcpts < 1 || o.message.rcpts > 10000) return "--rcpts must be 1..10000";
  if (o.message.size > (size_t(1) << 30)) return "--size must be at most 1 GiB";
  if (o.message.domains < 0) return "--domains must not be negative";
  if (o.session.per_connection < 0) return "--per-connection must not be negative";
  if (!(o.timeout_s > 0)) return "--timeout must be positive";
  if (o.duration_s < 0) return "--duration must not be negative";
  if (o.max_retries < 0) return "--max-retries must not be negative";
  if (o.source && o.source->family() != o.target.family())
    return "--source and --target must be the same address family";
  for (char c : o.message.from + o.message.to_format + o.session.ehlo_name)
    if (c == '\r' || c == '\n' || c == '<' || c == '>') return "--from, --to and --ehlo must not contain CR, LF, < or >";
  return "";
}

}  // namespace

std::optional<InjectOptions> parse_inject_options(int argc, char** argv, int* exit_code) {
  InjectOptions o;
  std::string target, source;
  CLI::App app{"ringmail-inject: SMTP load generator for testing and benchmarking SMTP receivers."};
  app.add_option("--target", target, "Server address HOST:PORT (IPv4 literal or [IPv6]:PORT)")->required();
  app.add_option("--source", source, "Bind the client side to this IP (e.g. 127.0.0.2)");
  app.add_option("--count", o.count, "Messages to send")->capture_default_str();
  app.add_option("--size", o.message.size, "Approximate message size in bytes")->capture_default_str();
  app.add_option("--connections", o.connections, "Concurrent connections")->capture_default_str();
  app.add_option("--per-connection", o.session.per_connection,
                 "Messages per connection before QUIT and reconnect (0 = unlimited)")
      ->capture_default_str();
  app.add_option("--rcpts", o.message.rcpts, "Recipients per message")->capture_default_str();
  app.add_option("--from", o.message.from, "Envelope sender and From: address")->capture_default_str();
  app.add_option("--to", o.message.to_format,
                 "Recipient format: {n} = recipient counter (message * rcpts + index), {m} = message "
                 "number, {r} = recipient index within the message")
      ->capture_default_str();
  app.add_option("--domains", o.message.domains,
                 "Spread recipients over K domains d{k}.example.com (k = recipient counter mod K; "
                 "replaces the domain of --to); 0 = keep --to's domain")
      ->capture_default_str();
  app.add_option("--ehlo", o.session.ehlo_name, "EHLO/HELO name")->capture_default_str();
  app.add_flag("--starttls", o.session.starttls,
               "After EHLO send STARTTLS, do the TLS handshake (no certificate check; sessions resumed "
               "across reconnects), then EHLO again; a server without STARTTLS is a connection failure");
  app.add_flag("--pipelining", o.session.want_pipelining,
               "Send MAIL, RCPT and DATA together when the server advertises PIPELINING");
  app.add_flag("--8bit", o.message.eightbit,
               "Add a UTF-8 body line and send BODY=8BITMIME when the server advertises 8BITMIME");
  app.add_option("--timeout", o.timeout_s, "Seconds to wait for each reply (and each connect)")
      ->capture_default_str();
  app.add_option("--duration", o.duration_s,
                 "Wall-clock cap in seconds: start no message after it; abort what is still in flight "
                 "a grace period (min(timeout, 10 s)) later. 0 = no cap")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "Event loops (threads); connections are split among them")
      ->capture_default_str();
  app.add_option("--max-retries", o.max_retries,
                 "Give up a connection slot after this many consecutive failed connections "
                 "(retried with back-off from 50 ms to 2 s)")
      ->capture_default_str();
  app.add_option("--log", o.log_path,
                 "Append one line per message: '<code> <Message-ID> <queue-id or ->' (code 000 = "
                 "connection broke before the final reply)");
  app.add_flag("--quiet", o.quiet, "No progress line");
  app.add_flag("--json", o.json, "Print the summary as one JSON object");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    *exit_code = rc == 0 ? 0 : 2;
    return std::nullopt;
  }
  auto t = SocketAddress::parse(target);
  if (!t.ok()) {
    std::fprintf(stderr, "ringmail-inject: --target %s: %s\n", target.c_str(), t.error().message().c_str());
    *exit_code = 2;
    return std::nullopt;
  }
  o.target = *t;
  if (!source.empty()) {
    auto s = SocketAddress::parse(source, 0);
    if (!s.ok()) {
      std::fprintf(stderr, "ringmail-inject: --source %s: %s\n", source.c_str(), s.error().message().c_str());
      *exit_code = 2;
      return std::nullopt;
    }
    o.source = *s;
    o.source->set_port(0);
  }
  if (std::string why = validate(o); !why.empty()) {
    std::fprintf(stderr, "ringmail-inject: %s\n", why.c_str());
    *exit_code = 2;
    return std::nullopt;
  }
  if (o.threads > o.connections) o.threads = o.connections;
  return o;
}

}  // namespace ringmail::inject
