// TrackingLog implementation (see tracking_log.h).
#include "engine/logs/tracking_log.h"

#include <fmt/format.h>

#include <iterator>

#include "common/text_io.h"
#include "queue/queue_id.h"

namespace ringmail::engine {

TrackingLog::TrackingLog(Loop* loop, std::string dir, unsigned worker, const Clock& clock, unsigned max_age_days)
    : file_(loop, std::move(dir), "tracking", worker, {}, clock, max_age_days) {}

std::string& TrackingLog::begin(std::string_view event, queue::QueueId id) {
  std::string_view stamp;
  std::string& line = file_.begin_line(&stamp);
  fmt::format_to(std::back_inserter(line), R"({{"time":"{}","event":"{}","id":"{}")", stamp, event,
                 id == 0 ? std::string() : queue::format_queue_id(id));
  return line;
}

void TrackingLog::field(std::string& line, std::string_view name, std::string_view value) {
  fmt::format_to(std::back_inserter(line), R"(,"{}":)", name);
  append_json_quoted(line, value);
}

void TrackingLog::field(std::string& line, std::string_view name, int64_t value) {
  fmt::format_to(std::back_inserter(line), R"(,"{}":{})", name, value);
}

void TrackingLog::list(std::string& line, std::string_view name, const std::vector<std::string_view>& values) {
  fmt::format_to(std::back_inserter(line), R"(,"{}":[)", name);
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) line += ',';
    append_json_quoted(line, values[i]);
  }
  line += ']';
}

void TrackingLog::end(std::string& line) {
  line += '}';
  file_.end_line();
}

void TrackingLog::receive(const queue::StoredEnvelope& env, uint64_t size, std::string_view message_id) {
  std::string& line = begin("receive", env.id);
  field(line, "from", env.mail_from);
  std::vector<std::string_view> to(env.rcpts.begin(), env.rcpts.end());
  list(line, "to", to);
  field(line, "size", static_cast<int64_t>(size));
  field(line, "client", env.client);
  field(line, "message_id", message_id);
  end(line);
}

void TrackingLog::deliver(queue::QueueId id, std::string_view rcpt, std::string_view connector,
                          std::string_view remote, std::string_view reply, uint32_t attempt) {
  std::string& line = begin("deliver", id);
  field(line, "to", rcpt);
  field(line, "connector", connector);
  field(line, "remote", remote);
  field(line, "reply", reply);
  field(line, "attempt", static_cast<int64_t>(attempt));
  end(line);
}

void TrackingLog::bounce(queue::QueueId id, std::string_view rcpt, std::string_view connector,
                         std::string_view remote, std::string_view status, std::string_view reply) {
  std::string& line = begin("bounce", id);
  field(line, "to", rcpt);
  field(line, "connector", connector);
  field(line, "remote", remote);
  field(line, "status", status);
  field(line, "reply", reply);
  end(line);
}

void TrackingLog::defer(queue::QueueId id, const std::vector<std::string_view>& rcpts, std::string_view connector,
                        std::string_view remote, uint32_t attempt, int64_t retry_in_seconds, std::string_view reason) {
  std::string& line = begin("defer", id);
  list(line, "to", rcpts);
  field(line, "connector", connector);
  field(line, "remote", remote);
  field(line, "attempt", static_cast<int64_t>(attempt));
  field(line, "retry_in", retry_in_seconds);
  field(line, "reason", reason);
  end(line);
}

void TrackingLog::expire(queue::QueueId id, const std::vector<std::string_view>& rcpts, std::string_view reason) {
  std::string& line = begin("expire", id);
  list(line, "to", rcpts);
  field(line, "reason", reason);
  end(line);
}

void TrackingLog::remove(queue::QueueId id, const std::vector<std::string_view>& rcpts, std::string_view queue,
                         bool with_dsn) {
  std::string& line = begin("remove", id);
  list(line, "to", rcpts);
  field(line, "queue", queue);
  line += with_dsn ? R"(,"dsn":true)" : R"(,"dsn":false)";
  end(line);
}

void TrackingLog::reject(queue::QueueId id, std::string_view client, std::string_view command,
                         std::string_view argument, std::string_view reply) {
  std::string& line = begin("reject", id);
  field(line, "client", client);
  field(line, "command", command);
  field(line, "argument", argument);
  field(line, "reply", reply);
  end(line);
}

void TrackingLog::dsn(queue::QueueId id, std::string_view kind, std::string_view to, size_t recipients) {
  std::string& line = begin("dsn", id);
  field(line, "kind", kind);
  field(line, "to", to);
  field(line, "recipients", static_cast<int64_t>(recipients));
  end(line);
}

}  // namespace ringmail::engine
