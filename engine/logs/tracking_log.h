// The message-tracking log (--tracking-log-dir; Exchange's message tracking, Postfix's `status=`
// lines): one JSON object per line for each event in a message's life, so an operator can answer
// "what happened to the mail from X to Y" with grep or jq. Each worker writes its own file per UTC
// day (DailyLog): DIR/tracking-YYYYMMDD-w<worker>.log; a message may be received by one worker and
// delivered by another, so read all of a day's files (`cat DIR/tracking-20261128-w*.log | jq -s
// 'sort_by(.time)[] | select(.id == "...")'`; lines of the same millisecond from different workers
// may tie). Events and their fields (all have "time", "event",
// "id", the 16-hex-digit queue id):
//   receive  from, to [all recipients], size (octets as stored), client ("ip:port helo"),
//            message_id (the Message-ID header, "" if none or for a DSN)
//   deliver  to, connector, remote, reply (the next hop's final reply), attempt (1 = first)
//   bounce   to, connector, remote, status (x.y.z), reply — a permanent failure; a DSN follows
//   defer    to [recipients], connector, remote, attempt, retry_in (seconds), reason
//   expire   to [recipients], reason — failed after --message-expiration; a DSN follows
//   remove   to [recipients], queue, dsn (true/false) — failed by the administrator
//   reject   client, command (MAIL, RCPT, DATA), argument, reply — the listener refused it; id is
//            the transaction's queue id, "" for a refused MAIL (Postfix's "NOQUEUE: reject")
//   dsn      kind (failure, delay, relayed), to (the original sender), recipients (count)
// Strings are JSON-escaped and always valid UTF-8 (json_quote). A DSN is itself a message: its
// receive event has from "" and client "DSN for <id>".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/logs/daily_log.h"
#include "queue/envelope.h"

namespace ringmail::engine {

class TrackingLog {
 public:
  // max_age_days: older files of this worker are removed when a new day begins (0: kept).
  TrackingLog(Loop* loop, std::string dir, unsigned worker, const Clock& clock = SystemClock::instance(),
              unsigned max_age_days = 0);

  void receive(const queue::StoredEnvelope& env, uint64_t size, std::string_view message_id = {});
  void deliver(queue::QueueId id, std::string_view rcpt, std::string_view connector, std::string_view remote,
               std::string_view reply, uint32_t attempt);
  void bounce(queue::QueueId id, std::string_view rcpt, std::string_view connector, std::string_view remote,
              std::string_view status, std::string_view reply);
  void defer(queue::QueueId id, const std::vector<std::string_view>& rcpts, std::string_view connector,
             std::string_view remote, uint32_t attempt, int64_t retry_in_seconds, std::string_view reason);
  void expire(queue::QueueId id, const std::vector<std::string_view>& rcpts, std::string_view reason);
  void remove(queue::QueueId id, const std::vector<std::string_view>& rcpts, std::string_view queue, bool with_dsn);
  void dsn(queue::QueueId id, std::string_view kind, std::string_view to, size_t recipients);
  // id 0: no transaction (a refused MAIL).
  void reject(queue::QueueId id, std::string_view client, std::string_view command, std::string_view argument,
              std::string_view reply);

  void flush() { file_.flush(); }
  std::string path_for(WallTime wall) const { return file_.path_for(wall); }

 private:
  std::string& begin(std::string_view event, queue::QueueId id);  // {"time":..,"event":..,"id":..
  void field(std::string& line, std::string_view name, std::string_view value);
  void field(std::string& line, std::string_view name, int64_t value);
  void list(std::string& line, std::string_view name, const std::vector<std::string_view>& values);
  void end(std::string& line);

  DailyLog file_;
};

}  // namespace ringmail::engine
