// --record and --save-dir of ringmail-sink: one JSON line per accepted message (listen address,
// client, envelope, Message-ID, size, SHA-256, saved file) and the message's exact bytes in
// DIR/<n>.eml. Writes are synchronous and serialised by a mutex: recording is for tests, not for
// benchmark runs (the benchmark path never constructs a recorder).
#pragma once

#include "common/text_io.h"

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/result.h"
#include "tools/sink/responder.h"

namespace ringmail::sink {

// The Message-ID header's value (trimmed, unfolded), or "" when the header section has none.
using ringmail::message_id_of;  // common/text_io.h
// `s` as a JSON string literal, quotes included.
using ringmail::json_quote;  // common/text_io.h
// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

struct RecordedMessage {
  uint64_t number = 0;            // n of SINK<n>
  std::string_view listen;        // local address the client connected to
  std::string_view client;        // the client's address
  const Transaction* transaction = nullptr;
};

class MessageRecorder {
 public:
  // Either path may be empty (that output is off). Creates save_dir if needed.
  static Result<std::unique_ptr<MessageRecorder>> open(const std::string& record_path, const std::string& save_dir);
  ~MessageRecorder();
  // Thread-safe. Errors are logged once and counted, never fatal.
  void record(const RecordedMessage& m);
  // The JSON line record() writes (without the newline); exposed for tests.
  std::string format_line(const RecordedMessage& m, std::string_view body_file) const;
  uint64_t write_errors() const { return write_errors_; }

 private:
  MessageRecorder() = default;
  std::mutex mutex_;              // serialises writers from several workers
  FILE* record_ = nullptr;        // --record file, or null
  std::string save_dir_;          // --save-dir, or empty
  uint64_t write_errors_ = 0;     // failed writes (guarded by mutex_)
};

}  // namespace ringmail::sink
