// Blocking, read-only scans of segments and journals, and the replay that rebuilds the queue.
#include "queue/spool_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "queue/file_io.h"
#include "queue/record_format.h"

namespace ringmail::queue {
namespace {

// Closes a descriptor when the scope ends.
struct FdGuard {
  int fd;  // -1 = nothing to close
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

// Lists "<16 hex><suffix>" files in a directory, sorted by id. A missing directory is empty.
Result<std::vector<uint64_t>> list_ids(const std::string& path, std::string_view suffix) {
  std::vector<uint64_t> ids;
  DIR* d = ::opendir(path.c_str());
  if (!d) {
    if (errno == ENOENT) return ids;
    return make_error("cannot open {}: {}", path, std::strerror(errno));
  }
  while (dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name.size() != 16 + suffix.size() || name.substr(16) != suffix) continue;
    auto id = parse_queue_id(name.substr(0, 16));
    if (id.ok()) ids.push_back(*id);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

std::string segment_dir(const std::string& dir) { return dir + "/seg"; }
std::string journal_dir(const std::string& dir) { return dir + "/journal"; }
std::string segment_path(const std::string& dir, uint64_t id) {
  return segment_dir(dir) + "/" + format_queue_id(id) + ".seg";
}
std::string journal_path(const std::string& dir, uint64_t id) {
  return journal_dir(dir) + "/" + format_queue_id(id) + ".jnl";
}

size_t RecoveredMessage::pending_count() const {
  return static_cast<size_t>(std::count_if(rcpts.begin(), rcpts.end(),
                                           [](const RecipientState& r) { return !is_final(r.state); }));
}

Result<SegmentScan> scan_segment(const std::string& path, std::vector<ScannedMessage>* out) {
  SegmentScan scan;
  scan.path = path;
  std::string_view base(path);
  base = base.substr(base.rfind('/') + 1);
  if (auto id = parse_queue_id(base.substr(0, 16)); id.ok()) scan.segment_id = *id;

  FdGuard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) return make_error("cannot open {}: {}", path, std::strerror(errno));
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) return make_error("cannot stat {}: {}", path, std::strerror(errno));
  scan.file_size = static_cast<uint64_t>(st.st_size);

  uint8_t header[format::kSegmentHeaderSize] = {};
  int n = pread_all(fd.fd, header, sizeof header, 0);
  if (n < 0 || format::is_zero_header(header)) {
    // Crash between creating the file and the header reaching the disk: an empty segment.
    scan.end = scan.file_size == 0 ? SegmentScan::End::kEndOfFile : SegmentScan::End::kZeroFill;
    if (n < 0 && scan.file_size > 0) {
      scan.end = SegmentScan::End::kTorn;
      scan.detail = "file shorter than the segment header";
    }
    return scan;
  }
  auto sh = format::decode_segment_header(header, sizeof header);
  if (!sh.ok()) return make_error("{}: {}", path, sh.error().message());

  uint64_t off = format::kSegmentHeaderSize;
  scan.valid_end = off;
  std::vector<uint8_t> buf;
  while (true) {
    if (off == scan.file_size) {
      scan.end = SegmentScan::End::kEndOfFile;
      break;
    }
    uint8_t rh[format::kRecordHeaderSize];
    if (scan.file_size - off < sizeof rh || pread_all(fd.fd, rh, sizeof rh, off) < 0) {
      scan.end = SegmentScan::End::kTorn;
      scan.detail = fmt::format("partial record header at offset {}", off);
      break;
    }
    if (format::is_zero_header(rh)) {
      scan.end = SegmentScan::End::kZeroFill;
      break;
    }
    format::RecordHeader h;
    if (!format::decode_record_header(rh, &h)) {
      scan.end = SegmentScan::End::kTorn;
      scan.detail = fmt::format("bad record header at offset {}", off);
      break;
    }
    uint64_t total = format::record_size(h.envelope_len, h.body_len);
    if (total > scan.file_size - off) {
      scan.end = SegmentScan::End::kTorn;
      scan.detail = fmt::format("record at offset {} runs past the end of the file", off);
      break;
    }
    uint64_t payload = h.envelope_len + h.body_len;
    buf.resize(payload);
    if (pread_all(fd.fd, buf.data(), payload, off + sizeof rh) < 0 ||
        !format::record_crc_ok(rh, buf.data(), payload)) {
      scan.end = SegmentScan::End::kTorn;
      scan.detail = fmt::format("checksum mismatch in record at offset {}", off);
      break;
    }
    auto env = format::decode_envelope(buf.data(), h.envelope_len);
    if (!env.ok() || env->id != h.id) {
      // The CRC matched, so the writer produced this: a format bug, not a torn write.
      return make_error("{}: record at offset {} has a checksum-valid but undecodable envelope{}", path, off,
                        env.ok() ? "" : ": " + env.error().message());
    }
    if (out) {
      MessageLocation loc{scan.segment_id, off, h.envelope_len, h.body_len, total};
      out->push_back({std::move(*env), loc});
    }
    ++scan.records;
    off += total;
    scan.valid_end = off;
  }
  return scan;
}

Result<JournalScan> scan_journal(const std::string& path, std::vector<DeliveryUpdate>* out) {
  JournalScan scan;
  scan.path = path;
  FdGuard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) return make_error("cannot open {}: {}", path, std::strerror(errno));
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) return make_error("cannot stat {}: {}", path, std::strerror(errno));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  std::vector<uint8_t> data(size);
  if (size > 0 && pread_all(fd.fd, data.data(), size, 0) < 0)
    return make_error("cannot read {}: {}", path, std::strerror(errno));
  if (size < format::kJournalHeaderSize) {
    scan.torn = size > 0;  // crash right after creation: nothing recorded yet
    return scan;
  }
  if (!format::journal_header_ok(data.data(), size)) return make_error("{}: not a ringmail delivery journal", path);
  uint64_t off = format::kJournalHeaderSize;
  while (off + format::kJournalRecordSize <= size) {
    DeliveryUpdate u;
    if (!format::decode_journal_record(data.data() + off, &u)) break;
    if (out) out->push_back(u);
    ++scan.records;
    off += format::kJournalRecordSize;
  }
  scan.torn = off != size;
  return scan;
}

Result<SpoolSnapshot> read_spool(const std::string& dir) {
  SpoolSnapshot snap;
  auto seg_ids = list_ids(segment_dir(dir), ".seg");
  if (!seg_ids.ok()) return seg_ids.error();
  auto jnl_ids = list_ids(journal_dir(dir), ".jnl");
  if (!jnl_ids.ok()) return jnl_ids.error();

  std::vector<ScannedMessage> messages;
  for (uint64_t id : *seg_ids) {
    auto scan = scan_segment(segment_path(dir, id), &messages);
    if (!scan.ok()) {
      if (::access(segment_path(dir, id).c_str(), F_OK) != 0 && errno == ENOENT) continue;  // deleted meanwhile
      return scan.error();
    }
    snap.max_id_ms = std::max(snap.max_id_ms, queue_id_ms(id));
    snap.live_per_segment[id] = 0;
    snap.segments.push_back(std::move(*scan));
  }
  std::vector<DeliveryUpdate> updates;
  for (uint64_t id : *jnl_ids) {
    auto scan = scan_journal(journal_path(dir, id), &updates);
    if (!scan.ok()) {
      if (::access(journal_path(dir, id).c_str(), F_OK) != 0 && errno == ENOENT) continue;  // compacted meanwhile
      return scan.error();
    }
    snap.max_id_ms = std::max(snap.max_id_ms, queue_id_ms(id));
    snap.journals.push_back(std::move(*scan));
  }

  std::unordered_map<QueueId, size_t> index;  // queue id -> position in snap.live
  snap.live.reserve(messages.size());
  for (auto& m : messages) {
    snap.max_id_ms = std::max(snap.max_id_ms, queue_id_ms(m.env.id));
    RecoveredMessage r{std::move(m.env), m.location, {}};
    r.rcpts.resize(r.env.rcpts.size());
    index[r.env.id] = snap.live.size();
    snap.live.push_back(std::move(r));
  }
  for (const auto& u : updates) {
    auto it = index.find(u.id);
    if (it == index.end()) continue;  // message already gone (segment deleted): nothing to do
    auto& m = snap.live[it->second];
    if (u.rcpt < m.rcpts.size()) merge_recipient_state(m.rcpts[u.rcpt], u);
  }
  std::vector<RecoveredMessage> live;
  live.reserve(snap.live.size());
  for (auto& m : snap.live) {
    if (m.pending_count() == 0) {
      snap.finished.push_back(std::move(m));
      continue;
    }
    ++snap.live_per_segment[m.location.segment];
    live.push_back(std::move(m));
  }
  snap.live = std::move(live);
  return snap;
}

Result<StoredMessage> decode_message(const uint8_t* record, size_t len, const MessageLocation& loc) {
  format::RecordHeader h;
  if (len < loc.record_len || len < format::kRecordHeaderSize || !format::decode_record_header(record, &h) ||
      h.envelope_len != loc.envelope_len || h.body_len != loc.body_len)
    return make_error("spool record at {}:{} does not match its location", format_queue_id(loc.segment), loc.offset);
  uint64_t payload = h.envelope_len + h.body_len;
  if (!format::record_crc_ok(record, record + format::kRecordHeaderSize, payload))
    return make_error("spool record at {}:{} has a bad checksum", format_queue_id(loc.segment), loc.offset);
  auto env = format::decode_envelope(record + format::kRecordHeaderSize, h.envelope_len);
  if (!env.ok()) return env.error();
  StoredMessage m{std::move(*env), {}};
  m.body.assign(reinterpret_cast<const char*>(record + format::kRecordHeaderSize + h.envelope_len), h.body_len);
  return m;
}

Result<StoredMessage> read_message_blocking(const std::string& dir, const MessageLocation& loc) {
  std::string path = segment_path(dir, loc.segment);
  FdGuard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) return make_error("cannot open {}: {}", path, std::strerror(errno));
  std::vector<uint8_t> buf(loc.record_len);
  int n = pread_all(fd.fd, buf.data(), buf.size(), loc.offset);
  if (n < 0) return make_error("cannot read {}: {}", path, std::strerror(-n));
  return decode_message(buf.data(), buf.size(), loc);
}

}  // namespace ringmail::queue
