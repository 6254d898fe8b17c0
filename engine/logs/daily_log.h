// A log file per worker and UTC day, appended to by one loop thread: DIR/<prefix>-YYYYMMDD-w<worker>.log.
// The machinery under the protocol log and the message-tracking log (each formats its own lines).
//
// Lines are buffered and written with one write(2) once 64 KiB are waiting or 100 ms after the first
// unwritten line (a timer on the loop), so a crash loses at most the last 100 ms of lines and a
// busy relay makes a few dozen writes a second, not one per event. A line goes to the file of the
// UTC day it was made in. A failed open or write is reported once in the daemon log
// and those lines are dropped — a log never holds up mail — and writing resumes when it can.
// Retention: when a writer opens a new day's file it deletes its own files (same prefix and worker)
// of days more than `max_age_days` before it (Exchange keeps 30 days of tracking logs by default;
// 0 keeps everything). Other files in the directory are never touched.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "engine/loop/timer_wheel.h"

namespace ringmail::engine {

class Loop;

class DailyLog {
 public:
  // loop: whose timer flushes (null: the owner calls flush()). `header`, if not
  // empty, is written as the first line of every new file. Nothing is opened before the first line.
  DailyLog(Loop* loop, std::string dir, std::string prefix, unsigned worker, std::string header = {},
           const Clock& clock = SystemClock::instance(), unsigned max_age_days = 0);
  ~DailyLog();  // flushes
  DailyLog(const DailyLog&) = delete;
  DailyLog& operator=(const DailyLog&) = delete;

  // Starts a line: returns the buffer to append it to (without its newline) and puts the time now,
  // "2026-11-28T15:40:01.123Z", in *stamp (valid until the next begin_line()). end_line() ends it.
  std::string& begin_line(std::string_view* stamp);
  void end_line();
  void flush();
  std::string path_for(WallTime wall) const;  // the file lines made at `wall` go to

 private:
  std::string path_for_day(int day) const;  // day = YYYYMMDD (UTC)
  bool open_for(int day);
  void remove_old_files(int today);
  void on_flush_timer() { flush(); }

  Loop* loop_;
  std::string dir_;
  std::string prefix_;
  unsigned worker_;
  std::string header_;
  const Clock& clock_;
  unsigned max_age_days_;       // 0: keep every file
  int fd_ = -1;                 // the open file, -1 before the first line or after a failure
  int day_ = 0;                 // YYYYMMDD of fd_
  int64_t stamp_second_ = INT64_MIN;  // the second stamp_ holds
  int stamp_day_ = 0;           // its YYYYMMDD
  std::string stamp_;           // "2026-11-28T15:40:01.123Z" (milliseconds rewritten per line)
  std::string buf_;             // lines not yet written
  int buf_day_ = 0;             // the day the buffered lines belong to
  bool failing_ = false;        // the last open or write failed (reported once)
  MemberTimer<DailyLog, &DailyLog::on_flush_timer> flush_timer_{this};  // armed while lines wait
};

}  // namespace ringmail::engine
