// Fuzz target: reading the spool back (queue/record_format.h, queue/spool_scan.h) from damaged files.
// Three modes, chosen by the first input byte:
//   0  the rest is a whole segment file, then a whole journal file: scanning either never crashes,
//      and every message the segment scan returns decodes again from its location;
//   1  the rest is an envelope that passed the CRC (a format bug or a collision): decoding never
//      crashes, and a decoded envelope encodes and decodes to the same envelope;
//   2  the rest describes messages and damage: a segment of valid records is written, then bytes
//      are flipped, the file is cut short and zeros are appended (a torn write, preallocated space).
//      The scan must return exactly the records that lie wholly before the first damaged byte,
//      each equal to what was written — every acknowledged message is found again, and nothing
//      damaged is taken for a message.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "queue/record_format.h"
#include "queue/spool_scan.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_input.h"

namespace fmt_ = ringmail::queue::format;
namespace queue = ringmail::queue;

namespace {

const std::string& temp_dir() {
  static const std::string dir = [] {
    std::string tmpl = (std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp") + std::string("/rm-fuzz-XXXXXX");
    char* d = mkdtemp(tmpl.data());
    FUZZ_CHECK(d != nullptr);
    std::string made = d;
    static std::string for_exit = made;
    std::atexit([] { std::filesystem::remove_all(for_exit); });
    return made;
  }();
  return dir;
}

std::string write_file(const std::string& name, const uint8_t* data, size_t size) {
  std::string path = temp_dir() + "/" + name;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(size == 0 || ::write(fd, data, size) == static_cast<ssize_t>(size));
  ::close(fd);
  return path;
}

constexpr uint64_t kSegmentId = 0x2a;
const std::string kSegmentName = "000000000000002a.seg";

void raw_files(std::string_view rest) {
  size_t half = rest.size() / 2;
  auto bytes = reinterpret_cast<const uint8_t*>(rest.data());
  std::string seg = write_file(kSegmentName, bytes, half);
  std::vector<queue::ScannedMessage> found;
  auto scan = queue::scan_segment(seg, &found);
  if (scan.ok()) {
    FUZZ_CHECK(scan->records == found.size());
    FUZZ_CHECK(scan->valid_end <= scan->file_size);
    for (const auto& m : found) {
      FUZZ_CHECK(m.location.offset + m.location.record_len <= half);
      auto again = queue::decode_message(bytes + m.location.offset, m.location.record_len, m.location);
      FUZZ_CHECK(again.ok());
      FUZZ_CHECK(again->env == m.env);
    }
  }
  std::string jnl = write_file("000000000000002a.jnl", bytes + half, rest.size() - half);
  std::vector<queue::DeliveryUpdate> updates;
  (void)queue::scan_journal(jnl, &updates);
}

queue::StoredEnvelope normalised(queue::StoredEnvelope e) {
  e.flags &= ~queue::kEnvelopeDsn;
  if (!e.has_dsn_params()) {
    e.dsn_ret = 0;
    e.envid.clear();
    e.rcpt_dsn.clear();
  }
  return e;
}

void envelope_roundtrip(std::string_view rest) {
  auto env = fmt_::decode_envelope(reinterpret_cast<const uint8_t*>(rest.data()), rest.size());
  if (!env.ok()) return;
  std::vector<uint8_t> rec;
  fmt_::append_message_record(rec, *env, "body");
  fmt_::RecordHeader h;
  FUZZ_CHECK(fmt_::decode_record_header(rec.data(), &h));
  FUZZ_CHECK(h.id == env->id && h.body_len == 4);
  FUZZ_CHECK(fmt_::record_crc_ok(rec.data(), rec.data() + fmt_::kRecordHeaderSize, h.envelope_len + h.body_len));
  auto again = fmt_::decode_envelope(rec.data() + fmt_::kRecordHeaderSize, h.envelope_len);
  FUZZ_CHECK(again.ok());
  // The arrival time is stored in milliseconds; the DSN flag and all-empty DSN fields are not kept.
  queue::StoredEnvelope want = normalised(*env);
  want.arrival = again->arrival;
  FUZZ_CHECK(normalised(*again) == want);
}

void damaged_segment(ringmail::fuzz::Input& in) {
  std::vector<uint8_t> file(fmt_::kSegmentHeaderSize);
  fmt_::encode_segment_header(file.data(), 3, kSegmentId);
  struct Written {
    queue::StoredEnvelope env;
    std::string body;
    uint64_t offset, end;
  };
  std::vector<Written> written;
  unsigned count = in.byte() % 8;
  for (unsigned i = 0; i < count; ++i) {
    queue::StoredEnvelope env;
    env.id = 1000 + i;
    env.arrival = ringmail::WallTime(std::chrono::milliseconds(1'800'000'000'000 + i));
    env.mail_from = std::string(in.piece());
    env.client = "[192.0.2.1]:4000 c.test";
    unsigned rcpts = 1 + in.byte() % 4;
    for (unsigned r = 0; r < rcpts; ++r) env.rcpts.emplace_back(in.piece());
    if (in.byte() & 1) {
      env.dsn_ret = 1;
      env.envid = std::string(in.piece());
      env.rcpt_dsn.resize(rcpts);
      env.rcpt_dsn[0].notify = 3;
      env.rcpt_dsn[0].orcpt_type = "rfc822";
      env.rcpt_dsn[0].orcpt = std::string(in.piece());
    }
    std::string body(in.take(in.u16() % 3000));
    uint64_t off = file.size();
    fmt_::append_message_record(file, env, body);
    written.push_back({env, body, off, file.size()});
  }
  std::vector<uint8_t> pristine = file;
  // Damage: flipped bytes, then a cut, then zeros (preallocated space that was never written).
  unsigned flips = in.byte() % 4;
  for (unsigned i = 0; i < flips && !file.empty(); ++i) {
    size_t at = in.u16() % file.size();
    file[at] ^= static_cast<uint8_t>(1 + in.byte() % 255);
  }
  uint16_t cut = in.u16();
  if (cut < file.size()) file.resize(cut);
  file.resize(file.size() + in.byte() * 8, 0);

  size_t first_damage = file.size();  // first offset where the file differs from what was written
  for (size_t i = 0; i < pristine.size(); ++i)
    if (i >= file.size() || file[i] != pristine[i]) {
      first_damage = i;
      break;
    }
  if (first_damage == file.size() && file.size() > pristine.size()) first_damage = pristine.size();

  std::string path = write_file(kSegmentName, file.data(), file.size());
  std::vector<queue::ScannedMessage> found;
  auto scan = queue::scan_segment(path, &found);
  if (first_damage < fmt_::kSegmentHeaderSize) return;  // a damaged file header: error or empty, either is right
  FUZZ_CHECK(scan.ok());
  size_t intact = 0;
  while (intact < written.size() && written[intact].end <= first_damage) ++intact;
  // Every record wholly before the first damaged byte is found, in order; records after it only
  // if the damage missed what their CRCs cover.
  FUZZ_CHECK(found.size() >= intact);
  FUZZ_CHECK(found.size() <= written.size());
  for (size_t i = 0; i < found.size(); ++i) {
    const Written& w = written[i];
    FUZZ_CHECK(found[i].location.offset == w.offset);
    FUZZ_CHECK(found[i].env == w.env);
    auto m = queue::decode_message(file.data() + w.offset, found[i].location.record_len, found[i].location);
    FUZZ_CHECK(m.ok());
    FUZZ_CHECK(m->body == w.body);
    // Nothing damaged is taken for a message: every byte its CRC covers is as written (damage in
    // the zero padding after the payload is not covered, and harmless).
    uint64_t payload_end = w.offset + fmt_::kRecordHeaderSize + found[i].location.envelope_len + w.body.size();
    FUZZ_CHECK(payload_end <= file.size());
    for (uint64_t b = w.offset; b < payload_end; ++b) FUZZ_CHECK(file[b] == pristine[b]);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ringmail::fuzz::Input in(data, size);
  switch (in.byte() % 3) {
    case 0:
      raw_files(in.rest());
      break;
    case 1:
      envelope_roundtrip(in.rest());
      break;
    default:
      damaged_segment(in);
      break;
  }
  return 0;
}
