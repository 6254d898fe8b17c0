// MessageRecorder implementation (see message_recorder.h): header scan for Message-ID, JSON
// quoting, SHA-256 via OpenSSL's EVP interface, and the two outputs.
#include "tools/sink/message_recorder.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "common/strings.h"

namespace ringmail::sink {

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) fmt::format_to(std::back_inserter(out), "{:02x}", digest[i]);
  return out;
}

Result<std::unique_ptr<MessageRecorder>> MessageRecorder::open(const std::string& record_path,
                                                               const std::string& save_dir) {
  std::unique_ptr<MessageRecorder> r(new MessageRecorder());
  if (!save_dir.empty()) {
    if (::mkdir(save_dir.c_str(), 0755) != 0 && errno != EEXIST)
      return make_error("--save-dir {}: {}", save_dir, std::strerror(errno));
    r->save_dir_ = save_dir;
  }
  if (!record_path.empty()) {
    r->record_ = std::fopen(record_path.c_str(), "a");
    if (!r->record_) return make_error("--record {}: {}", record_path, std::strerror(errno));
  }
  return r;
}

MessageRecorder::~MessageRecorder() {
  if (record_) std::fclose(record_);
}

std::string MessageRecorder::format_line(const RecordedMessage& m, std::string_view body_file) const {
  const Transaction& t = *m.transaction;
  std::string line = fmt::format(R"({{"queue_id":"SINK{}","listen":{},"client":{},"mail_from":{},"rcpts":[)",
                                 m.number, json_quote(m.listen), json_quote(m.client), json_quote(t.mail_from));
  for (size_t i = 0; i < t.rcpts.size(); ++i) {
    if (i) line += ',';
    line += json_quote(t.rcpts[i]);
  }
  fmt::format_to(std::back_inserter(line), R"(],"message_id":{},"size":{},"sha256":"{}")",
                 json_quote(message_id_of(t.body)), t.size, sha256_hex(t.body));
  if (!body_file.empty()) fmt::format_to(std::back_inserter(line), R"(,"body_file":{})", json_quote(body_file));
  line += '}';
  return line;
}

void MessageRecorder::record(const RecordedMessage& m) {
  std::string body_file;
  if (!save_dir_.empty()) {
    body_file = fmt::format("{}/{}.eml", save_dir_, m.number);
    FILE* f = std::fopen(body_file.c_str(), "wb");
    const std::string& body = m.transaction->body;
    bool ok = f && std::fwrite(body.data(), 1, body.size(), f) == body.size();
    if (f && std::fclose(f) != 0) ok = false;
    if (!ok) {
      std::lock_guard<std::mutex> g(mutex_);
      if (write_errors_++ == 0) log::warn("cannot write {}: {}", body_file, std::strerror(errno));
    }
  }
  if (!record_) return;
  std::string line = format_line(m, body_file);
  line += '\n';
  std::lock_guard<std::mutex> g(mutex_);
  // Flushed per line so a test can read the file while the sink runs.
  if (std::fwrite(line.data(), 1, line.size(), record_) != line.size() || std::fflush(record_) != 0) {
    if (write_errors_++ == 0) log::warn("cannot write the --record file: {}", std::strerror(errno));
  }
}

}  // namespace ringmail::sink
