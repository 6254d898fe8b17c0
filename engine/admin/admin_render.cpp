// JSON and text-table rendering of admin data (see admin_render.h). Times are UTC; "next retry"
// is shown both as a time and as seconds from now so scripts need no clock arithmetic.
#include "engine/admin/admin_render.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "common/text_io.h"

namespace ringmail::admin {
namespace {

bool is_epoch(WallTime t) { return t.time_since_epoch().count() == 0; }

int64_t seconds_until(WallTime t, WallTime now) {
  return std::chrono::duration_cast<std::chrono::seconds>(t - now).count();
}

// JSON value for an optional time: the ISO string or null.
std::string json_time(WallTime t) { return is_epoch(t) ? "null" : json_quote(iso8601(t)); }
std::string json_in(WallTime t, WallTime now) {
  return is_epoch(t) ? "null" : std::to_string(std::max<int64_t>(0, seconds_until(t, now)));
}

// Columns separated by two spaces, each as wide as its widest cell; numeric columns right-aligned.
class Table {
 public:
  Table(std::vector<std::string> header, std::vector<bool> right) : right_(std::move(right)) {
    rows_.push_back(std::move(header));
  }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string render() const {
    std::vector<size_t> width(rows_[0].size(), 0);
    for (const auto& row : rows_)
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    std::string out;
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        if (i > 0) line += "  ";
        size_t pad = width[i] - row[i].size();
        if (right_[i]) line.append(pad, ' ');
        line += row[i];
        if (!right_[i] && i + 1 < row.size()) line.append(pad, ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line;
      out += '\n';
    }
    return out;
  }

 private:
  std::vector<bool> right_;                    // per column: right-aligned
  std::vector<std::vector<std::string>> rows_;  // header first
};

std::string clip(std::string_view s, size_t max) {
  std::string out;
  for (char c : s) out += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  if (out.size() > max) out = out.substr(0, max - 3) + "...";
  return out;
}

std::string or_dash(std::string s) { return s.empty() ? "-" : s; }

std::string retry_cell(WallTime t, WallTime now) {
  return is_epoch(t) ? "-" : "in " + short_duration(std::chrono::seconds(seconds_until(t, now)));
}

void recipient_json(std::string& out, const RecipientInfo& r, WallTime now) {
  out += fmt::format(
      "{{\"address\":{},\"queue\":{},\"state\":{},\"attempts\":{},\"last_error\":{},\"next_retry\":{},"
      "\"next_retry_in_seconds\":{}}}",
      json_quote(r.address), json_quote(r.queue), json_quote(recipient_state_name(r.state)), r.attempts,
      json_quote(r.last_error), json_time(r.next_retry), json_in(r.next_retry, now));
}

void message_json_into(std::string& out, const MessageInfo& m, WallTime now) {
  out += fmt::format("{{\"id\":{},\"sender\":{},\"size\":{},\"arrival\":{},\"age_seconds\":{},\"suspended\":{},"
                     "\"recipients\":[",
                     json_quote(m.id), json_quote(m.sender), m.size, json_time(m.arrival),
                     is_epoch(m.arrival) ? 0 : std::max<int64_t>(0, -seconds_until(m.arrival, now)),
                     m.suspended ? "true" : "false");
  for (size_t i = 0; i < m.recipients.size(); ++i) {
    if (i > 0) out += ',';
    recipient_json(out, m.recipients[i], now);
  }
  out += "]}";
}

// One word for a message's recipients in the table: the state they share, or "mixed".
std::string summary_state(const MessageInfo& m) {
  if (m.suspended) return "Suspended";
  if (m.recipients.empty()) return "-";
  RecipientState s = m.recipients[0].state;
  for (const auto& r : m.recipients)
    if (r.state != s) return "Mixed";
  return recipient_state_name(s);
}

}  // namespace

const char* queue_state_name(QueueState s) {
  static constexpr const char* kNames[kQueueStateCount] = {"Active", "Ready", "Retry", "Suspended", "Unreachable"};
  size_t i = static_cast<size_t>(s);
  return i < kQueueStateCount ? kNames[i] : "Unknown";
}

const char* recipient_state_name(RecipientState s) {
  static constexpr const char* kNames[] = {"Pending", "Deferred", "Suspended", "Delivered", "Failed"};
  size_t i = static_cast<size_t>(s);
  return i < std::size(kNames) ? kNames[i] : "Unknown";
}

std::string iso8601(WallTime t) {
  if (is_epoch(t)) return "";
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string short_duration(std::chrono::seconds d) {
  int64_t s = d.count();
  if (s <= 0) return "now";
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02d}h", s / 86400, (s % 86400) / 3600);
}

std::string queues_json(const std::vector<QueueInfo>& queues, WallTime now) {
  uint64_t messages = 0, recipients = 0;
  std::string out = "{\"queues\":[";
  out.reserve(queues.size() * 280);  // a typical queue object; avoids regrowth on 10k queues
  for (size_t i = 0; i < queues.size(); ++i) {
    const QueueInfo& q = queues[i];
    messages += q.messages;
    recipients += q.recipients;
    if (i > 0) out += ',';
    fmt::format_to(std::back_inserter(out), 
        "{{\"id\":{},\"next_hop\":{},\"connector\":{},\"state\":{},\"messages\":{},\"recipients\":{},"
        "\"oldest_age_seconds\":{},\"last_error\":{},\"next_retry\":{},\"next_retry_in_seconds\":{}}}",
        json_quote(q.id), json_quote(q.next_hop), json_quote(q.connector), json_quote(queue_state_name(q.state)),
        q.messages, q.recipients, q.oldest_age.count(), json_quote(q.last_error), json_time(q.next_retry),
        json_in(q.next_retry, now));
  }
  out += fmt::format("],\"totals\":{{\"queues\":{},\"messages\":{},\"recipients\":{}}}}}\n", queues.size(),
                     messages, recipients);
  return out;
}

std::string messages_json(std::string_view queue_id, const MessageList& list, WallTime now) {
  std::string out = fmt::format("{{\"queue\":{},\"total\":{},\"messages\":[", json_quote(queue_id), list.total);
  for (size_t i = 0; i < list.messages.size(); ++i) {
    if (i > 0) out += ',';
    message_json_into(out, list.messages[i], now);
  }
  out += "]}\n";
  return out;
}

std::string message_json(const MessageInfo& m, WallTime now) {
  std::string out;
  message_json_into(out, m, now);
  out += '\n';
  return out;
}

std::string action_json(const ActionResult& r) {
  return fmt::format("{{\"ok\":{},\"message\":{}}}\n", r.ok() ? "true" : "false", json_quote(r.message));
}

std::string error_json(std::string_view message) {
  return fmt::format("{{\"ok\":false,\"error\":{}}}\n", json_quote(message));
}

std::string queues_table(const std::vector<QueueInfo>& queues, WallTime now) {
  Table t({"QUEUE", "NEXT HOP", "CONNECTOR", "STATE", "MSGS", "RCPTS", "OLDEST", "NEXT RETRY", "LAST ERROR"},
          {false, false, false, false, true, true, true, false, false});
  uint64_t messages = 0, recipients = 0;
  for (const QueueInfo& q : queues) {
    messages += q.messages;
    recipients += q.recipients;
    t.add({clip(q.id, 40), clip(q.next_hop, 40), or_dash(clip(q.connector, 24)), queue_state_name(q.state),
           std::to_string(q.messages), std::to_string(q.recipients),
           q.oldest_age.count() > 0 ? short_duration(q.oldest_age) : "-", retry_cell(q.next_retry, now),
           or_dash(clip(q.last_error, 60))});
  }
  return t.render() + fmt::format("{} queues, {} messages, {} recipients\n", queues.size(), messages, recipients);
}

std::string messages_table(std::string_view queue_id, const MessageList& list, WallTime now) {
  Table t({"MESSAGE", "SENDER", "SIZE", "AGE", "RCPTS", "STATE", "ATTEMPTS", "NEXT RETRY", "LAST ERROR"},
          {false, false, true, true, true, false, true, false, false});
  for (const MessageInfo& m : list.messages) {
    uint32_t attempts = 0;
    WallTime next{};
    std::string error;
    for (const RecipientInfo& r : m.recipients) {
      attempts = std::max(attempts, r.attempts);
      if (!is_epoch(r.next_retry) && (is_epoch(next) || r.next_retry < next)) next = r.next_retry;
      if (error.empty()) error = r.last_error;
    }
    std::chrono::seconds age(is_epoch(m.arrival) ? 0 : -seconds_until(m.arrival, now));
    t.add({m.id, m.sender.empty() ? "<>" : clip(m.sender, 40), std::to_string(m.size), short_duration(age),
           std::to_string(m.recipients.size()), summary_state(m), std::to_string(attempts), retry_cell(next, now),
           or_dash(clip(error, 60))});
  }
  std::string shown = list.messages.size() < list.total
                          ? fmt::format(" ({} shown)", list.messages.size())
                          : std::string();
  return t.render() + fmt::format("queue {}: {} messages{}\n", queue_id, list.total, shown);
}

std::string message_text(const MessageInfo& m, WallTime now) {
  std::chrono::seconds age(is_epoch(m.arrival) ? 0 : -seconds_until(m.arrival, now));
  std::string out = fmt::format(
      "Message:   {}\nSender:    {}\nSize:      {} bytes\nArrival:   {} ({} ago)\nSuspended: {}\n\n", m.id,
      m.sender.empty() ? "<>" : m.sender, m.size, or_dash(iso8601(m.arrival)), short_duration(age),
      m.suspended ? "yes" : "no");
  Table t({"RECIPIENT", "QUEUE", "STATE", "ATTEMPTS", "NEXT RETRY", "LAST ERROR"},
          {false, false, false, true, false, false});
  for (const RecipientInfo& r : m.recipients)
    t.add({clip(r.address, 60), or_dash(clip(r.queue, 40)), recipient_state_name(r.state), std::to_string(r.attempts),
           retry_cell(r.next_retry, now), or_dash(clip(r.last_error, 80))});
  return out + t.render();
}

}  // namespace ringmail::admin
