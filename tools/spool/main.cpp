// ringmail-spool: looks at a spool directory without disturbing a running daemon (read-only, no
// lock; a torn tail in the active segment is normal then).
//   ringmail-spool --spool DIR list [--message-ids] [--json]   queued messages
//   ringmail-spool --spool DIR show ID [--body] [--json]       one message: envelope, recipient states, first lines (or all)
//   ringmail-spool --spool DIR check [--json]    verify every record; counts; exit 1 on errors
#include <CLI/CLI.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/strings.h"
#include "common/text_io.h"
#include "queue/spool_scan.h"

namespace {

using namespace ringmail;
using namespace ringmail::queue;


std::string iso_time(WallTime t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", tm, ms % 1000);
}

std::string sender(const StoredEnvelope& env) { return env.mail_from.empty() ? "<>" : env.mail_from; }

int list(const std::string& dir, const SpoolSnapshot& snap, bool json, bool with_message_ids) {
  auto message_id = [&](const RecoveredMessage& m) -> std::string {
    if (!with_message_ids) return "";
    auto msg = read_message_blocking(dir, m.location);
    return msg.ok() ? message_id_of(msg->body) : "";
  };
  if (json) {
    fmt::print("[");
    bool first = true;
    for (const auto& m : snap.live) {
      fmt::print("{}\n {{\"id\":\"{}\",\"arrival\":\"{}\",\"size\":{},\"sender\":{},\"recipients\":[", first ? "" : ",",
                 format_queue_id(m.env.id), iso_time(m.env.arrival), m.location.body_len, json_quote(m.env.mail_from));
      for (size_t i = 0; i < m.env.rcpts.size(); ++i)
        fmt::print("{}{}", i ? "," : "", json_quote(m.env.rcpts[i]));
      fmt::print("],\"pending\":{}", m.pending_count());
      if (with_message_ids) fmt::print(",\"message_id\":{}", json_quote(message_id(m)));
      fmt::print("}}");
      first = false;
    }
    fmt::print("\n]\n");
    return 0;
  }
  fmt::print("{:<16}  {:<24}  {:>10}  {:>7}  {}\n", "ID", "ARRIVAL", "SIZE", "PENDING", "SENDER -> RECIPIENTS");
  for (const auto& m : snap.live) {
    fmt::print("{:<16}  {:<24}  {:>10}  {:>3}/{:<3}  {} -> {}{}\n", format_queue_id(m.env.id), iso_time(m.env.arrival),
               m.location.body_len, m.pending_count(), m.env.rcpts.size(), sender(m.env),
               fmt::join(m.env.rcpts, ", "), with_message_ids ? "  " + message_id(m) : "");
  }
  fmt::print("{} queued messages\n", snap.live.size());
  return 0;
}

int show(const std::string& dir, const SpoolSnapshot& snap, const std::string& id_text, bool json, bool whole) {
  auto id = parse_queue_id(id_text);
  if (!id.ok()) {
    fmt::print(stderr, "ringmail-spool: {}\n", id.error().message());
    return 2;
  }
  const RecoveredMessage* found = nullptr;
  for (const auto* list : {&snap.live, &snap.finished})
    for (const auto& m : *list)
      if (m.env.id == *id) found = &m;
  if (!found) {
    fmt::print(stderr, "ringmail-spool: no message {} in {}\n", format_queue_id(*id), dir);
    return 1;
  }
  auto msg = read_message_blocking(dir, found->location);
  if (!msg.ok()) {
    fmt::print(stderr, "ringmail-spool: {}\n", msg.error().message());
    return 1;
  }
  std::string_view body = msg->body;
  std::string head;  // up to 20 lines of the message
  for (int lines = 0; (whole || lines < 20) && !body.empty(); ++lines) {
    size_t nl = body.find('\n');
    size_t take = nl == std::string_view::npos ? body.size() : nl + 1;
    head.append(body.substr(0, take));
    body.remove_prefix(take);
  }
  const StoredEnvelope& env = msg->env;
  if (json) {
    fmt::print("{{\"id\":\"{}\",\"arrival\":\"{}\",\"size\":{},\"sender\":{},\"client\":{},\"flags\":{},"
               "\"segment\":\"{}\",\"offset\":{},\"recipients\":[",
               format_queue_id(env.id), iso_time(env.arrival), msg->body.size(), json_quote(env.mail_from),
               json_quote(env.client), env.flags, format_queue_id(found->location.segment), found->location.offset);
    for (size_t i = 0; i < env.rcpts.size(); ++i) {
      const auto& r = found->rcpts[i];
      fmt::print("{}{{\"address\":{},\"state\":\"{}\",\"attempts\":{}}}", i ? "," : "", json_quote(env.rcpts[i]),
                 rcpt_state_name(r.state), r.attempts);
    }
    fmt::print("],\"head\":{}}}\n", json_quote(head));
    return 0;
  }
  fmt::print("id:        {}\narrival:   {}\nsize:      {} bytes\nsender:    {}\nclient:    {}\n",
             format_queue_id(env.id), iso_time(env.arrival), msg->body.size(), sender(env), env.client);
  fmt::print("flags:     {}{}\nlocation:  segment {} offset {}\n", env.flags & kEnvelope8BitMime ? "8BITMIME " : "",
             env.flags & kEnvelopeSmtpUtf8 ? "SMTPUTF8" : "", format_queue_id(found->location.segment),
             found->location.offset);
  for (size_t i = 0; i < env.rcpts.size(); ++i) {
    const auto& r = found->rcpts[i];
    fmt::print("rcpt {:>3}:  {}  {} (attempts {}{})\n", i, env.rcpts[i], rcpt_state_name(r.state), r.attempts,
               r.state == RcptState::kDeferred ? ", next " + iso_time(r.next_attempt) : "");
  }
  fmt::print("\n{}{}", head, body.empty() ? "" : "...\n");
  return 0;
}

const char* end_name(SegmentScan::End e) {
  switch (e) {
    case SegmentScan::End::kEndOfFile: return "end-of-file";
    case SegmentScan::End::kZeroFill: return "clean";
    case SegmentScan::End::kTorn: return "torn-tail";
  }
  return "?";
}

int check(const SpoolSnapshot& snap, bool json) {
  uint64_t records = 0, torn = 0, bytes = 0, jrecords = 0, jtorn = 0;
  for (const auto& s : snap.segments) {
    records += s.records;
    torn += s.end == SegmentScan::End::kTorn;
    bytes += s.valid_end;
  }
  for (const auto& j : snap.journals) {
    jrecords += j.records;
    jtorn += j.torn;
  }
  if (json) {
    fmt::print("{{\"segments\":[");
    for (size_t i = 0; i < snap.segments.size(); ++i) {
      const auto& s = snap.segments[i];
      fmt::print("{}{{\"id\":\"{}\",\"records\":{},\"valid_end\":{},\"file_size\":{},\"end\":\"{}\",\"detail\":{}}}",
                 i ? "," : "", format_queue_id(s.segment_id), s.records, s.valid_end, s.file_size, end_name(s.end),
                 json_quote(s.detail));
    }
    fmt::print("],\"records_ok\":{},\"torn_tails\":{},\"bytes\":{},\"journals\":{},\"journal_records\":{},"
               "\"journal_torn\":{},\"queued\":{},\"finished\":{}}}\n",
               records, torn, bytes, snap.journals.size(), jrecords, jtorn, snap.live.size(), snap.finished.size());
    return 0;
  }
  for (const auto& s : snap.segments)
    fmt::print("segment {}  {:>8} records  {:>12} bytes of {:>12}  {}{}{}\n", format_queue_id(s.segment_id), s.records,
               s.valid_end, s.file_size, end_name(s.end), s.detail.empty() ? "" : ": ", s.detail);
  fmt::print("{} segments: {} records ok, {} torn tails, {} bytes\n", snap.segments.size(), records, torn, bytes);
  fmt::print("{} journals: {} records, {} torn\n", snap.journals.size(), jrecords, jtorn);
  fmt::print("{} messages queued, {} finished (awaiting segment deletion)\n", snap.live.size(), snap.finished.size());
  if (torn > 0) fmt::print("note: a torn tail in the segment a running daemon writes to is normal\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringmail-spool: inspect a ringmail spool directory (read-only, safe while the daemon runs)"};
  std::string dir;
  bool json = false;
  app.add_option("--spool", dir, "spool directory")->required();
  app.add_flag("--json", json, "machine-readable output");
  auto* list_cmd = app.add_subcommand("list", "list queued messages");
  bool with_message_ids = false;
  list_cmd->add_flag("--message-ids", with_message_ids, "also read each message and show its Message-ID");
  bool whole = false;
  std::string id;
  auto* show_cmd = app.add_subcommand("show", "show one message's envelope and first lines");
  show_cmd->add_option("id", id, "queue id (16 hex digits)")->required();
  show_cmd->add_flag("--body", whole, "print the whole message, not only its first lines");
  auto* check_cmd = app.add_subcommand("check", "verify every record and print counts");
  app.require_subcommand(1);
  for (auto* sub : {list_cmd, show_cmd, check_cmd}) sub->add_flag("--json", json, "machine-readable output");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (::access(segment_dir(dir).c_str(), R_OK | X_OK) != 0) {
    fmt::print(stderr, "ringmail-spool: {} is not a readable spool directory (no {}): {}\n", dir, segment_dir(dir),
               std::strerror(errno));
    return 1;
  }
  auto snap = read_spool(dir);
  if (!snap.ok()) {
    fmt::print(stderr, "ringmail-spool: {}\n", snap.error().message());
    return 1;
  }
  if (*list_cmd) return list(dir, *snap, json, with_message_ids);
  if (*show_cmd) return show(dir, *snap, id, json, whole);
  return check(*snap, json);
}
