// The --log file of ringmail-inject: one line per finished message,
// "<code> <Message-ID> <queue-id-or->", written with one write(2) each and no user-space
// buffering, so the file is complete up to the last reply even if the target is killed -9.
#pragma once

#include <string>

#include "common/result.h"
#include "tools/inject/inject_session.h"

namespace ringmail::inject {

class OutcomeLog {
 public:
  OutcomeLog() = default;
  ~OutcomeLog();
  OutcomeLog(const OutcomeLog&) = delete;
  OutcomeLog& operator=(const OutcomeLog&) = delete;

  // Opens (creates, appends to) `path`. Several threads may then call write() at once.
  Status open(const std::string& path);
  bool is_open() const { return fd_ >= 0; }
  // Appends the line for one outcome. Returns false if the write failed (disk full, ...).
  bool write(const MessageOutcome& outcome) const;

 private:
  int fd_ = -1;  // O_APPEND descriptor; each line is one write, so lines never interleave
};

}  // namespace ringmail::inject
