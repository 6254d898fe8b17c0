// ringmail-queue: the operator's command line over the daemon's admin HTTP interface (docs/admin.md).
// It sends one request and prints the answer: the server renders the human tables (?format=table),
// and --json passes the server's JSON through untouched, so this program parses no JSON.
// Exit codes: 0 done, 1 the daemon refused or failed, 2 usage error, 3 daemon not reachable.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/net.h"
#include "engine/admin/admin_server.h"

namespace {

constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

// Percent-encodes a path segment (queue ids such as "smtp:example.com" keep their colon).
std::string encode_segment(std::string_view s) {
  std::string out;
  for (char c : s) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 std::string_view("-._~:@!$&'()*+,;=").find(c) != std::string_view::npos;
    if (plain) out += c;
    else out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
  }
  return out;
}

// Why a connection failed, for the error message (httplib only says "Connection").
std::string connect_failure(const ringmail::SocketAddress& addr) {
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::strerror(errno);
  std::string why = ::connect(fd, addr.sa(), addr.len()) == 0 ? "connection failed" : std::strerror(errno);
  ::close(fd);
  return why;
}

struct Request {
  std::string method;  // GET, POST or DELETE
  std::string path;    // with query, without format=
};

int run(const std::string& admin, bool json, int timeout_s, const Request& req) {
  std::string text = admin;
  if (text.starts_with("localhost:")) text = "127.0.0.1:" + text.substr(10);
  auto addr = ringmail::SocketAddress::parse(text);
  if (!addr) {
    std::fprintf(stderr, "ringmail-queue: --admin %s: %s\n", admin.c_str(), addr.error().message().c_str());
    return kExitUsage;
  }
  httplib::Client client(addr->host(), addr->port());
  client.set_connection_timeout(timeout_s, 0);
  client.set_read_timeout(timeout_s, 0);
  client.set_write_timeout(timeout_s, 0);
  std::string path = req.path;
  if (!json) path += (path.find('?') == std::string::npos ? "?" : "&") + std::string("format=table");

  httplib::Result res = req.method == "GET"    ? client.Get(path.c_str())
                        : req.method == "POST" ? client.Post(path.c_str())
                                               : client.Delete(path.c_str());
  if (!res) {
    std::string why = res.error() == httplib::Error::Connection ? connect_failure(*addr)
                                                                 : httplib::to_string(res.error());
    std::fprintf(stderr,
                 "ringmail-queue: cannot reach the ringmail admin interface at %s: %s\n"
                 "(is the daemon running with --admin %s?)\n",
                 addr->to_string().c_str(), why.c_str(), addr->to_string().c_str());
    return kExitUnreachable;
  }
  bool ok = res->status >= 200 && res->status < 300;
  // JSON goes to stdout either way so scripts can read the error too; tables' errors go to stderr.
  std::FILE* out = ok || json ? stdout : stderr;
  if (!ok && !json) std::fputs("ringmail-queue: ", out);
  std::fwrite(res->body.data(), 1, res->body.size(), out);
  return ok ? 0 : kExitRefused;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Show and steer ringmail's queues through the daemon's admin interface."};
  app.require_subcommand(1);
  std::string admin{ringmail::admin::kDefaultAdminListen};
  bool json = false;
  int timeout_s = 30;
  app.add_option("--admin", admin, "Admin interface address, HOST:PORT (IP literal or localhost)")
      ->capture_default_str();
  app.add_flag("--json", json, "Print the server's JSON instead of a table");
  app.add_option("--timeout", timeout_s, "Seconds to wait for the daemon")->capture_default_str()->check(CLI::PositiveNumber);

  Request req;
  app.add_subcommand("list", "List the queues: next hop, connector, state, counts, oldest, next retry, last error")
      ->callback([&] { req = {"GET", "/queues"}; });

  std::string queue;
  size_t limit = ringmail::admin::kDefaultMessageLimit;
  auto* messages = app.add_subcommand("messages", "List the messages in one queue");
  messages->add_option("QUEUE", queue, "Queue id (as shown by list)")->required();
  messages->add_option("--limit", limit, "Show at most this many messages")->capture_default_str()->check(CLI::PositiveNumber);
  messages->callback([&] { req = {"GET", fmt::format("/queues/{}/messages?limit={}", encode_segment(queue), limit)}; });

  std::string message;
  auto* show = app.add_subcommand("show", "Show one message's envelope and per-recipient status");
  show->add_option("ID", message, "Message queue id")->required();
  show->callback([&] { req = {"GET", "/messages/" + encode_segment(message)}; });

  // retry / suspend / resume take a queue id, or --message ID.
  for (const char* verb : {"retry", "suspend", "resume"}) {
    std::string help = fmt::format("{} a queue, or one message with --message",
                                   std::string(verb) == "retry" ? "Retry now (skip the back-off of)"
                                                                 : (std::string(verb) == "suspend" ? "Suspend" : "Resume"));
    auto* sub = app.add_subcommand(verb, help);
    auto* q = sub->add_option("QUEUE", queue, "Queue id");
    auto* m = sub->add_option("--message", message, "Message queue id instead of a queue");
    q->excludes(m);
    sub->require_option(1);
    sub->callback([&, verb] {
      req = message.empty() ? Request{"POST", fmt::format("/queues/{}/{}", encode_segment(queue), verb)}
                            : Request{"POST", fmt::format("/messages/{}/{}", encode_segment(message), verb)};
    });
  }

  bool no_dsn = false;
  auto* remove = app.add_subcommand("remove", "Remove a message (with a failure DSN to the sender unless --no-dsn)");
  remove->add_option("ID", message, "Message queue id")->required();
  remove->add_flag("--no-dsn", no_dsn, "Do not send a delivery status notification");
  remove->callback([&] { req = {"DELETE", fmt::format("/messages/{}?dsn={}", encode_segment(message), no_dsn ? 0 : 1)}; });

  app.add_subcommand("reload", "Reload the connector file (a bad file is refused and the old table stays)")
      ->callback([&] { req = {"POST", "/reload"}; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  return run(admin, json, timeout_s, req);
}
