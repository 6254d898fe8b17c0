// Encoding and checking of segment and journal bytes (layout documented in record_format.h).
#include "queue/record_format.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/crc32c.h"

namespace ringmail::queue {

const char* rcpt_state_name(RcptState s) {
  switch (s) {
    case RcptState::kPending: return "pending";
    case RcptState::kDeferred: return "deferred";
    case RcptState::kDelivered: return "delivered";
    case RcptState::kFailed: return "failed";
  }
  return "unknown";
}

void merge_recipient_state(RecipientState& into, const DeliveryUpdate& u) {
  into.flags |= u.flags;
  if (is_final(into.state)) return;  // final states never go back
  if (is_final(u.state) || u.attempts > into.attempts ||
      (u.attempts == into.attempts && u.next_attempt > into.next_attempt)) {
    into.state = u.state;
    into.attempts = u.attempts;
    into.next_attempt = u.next_attempt;
  }
}

namespace format {
namespace {

void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

int64_t to_unix_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
WallTime from_unix_ms(int64_t ms) {
  // Clamped to what WallTime can hold (nanoseconds in 64 bits here: about ±292 years), so a
  // damaged value cannot overflow the conversion.
  constexpr int64_t kLimit =
      std::chrono::duration_cast<std::chrono::milliseconds>(WallTime::duration::max()).count();
  ms = std::clamp(ms, -kLimit, kLimit);
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds(ms)));
}

// Envelope payload: id u64 | arrival ms i64 | flags u32 | rcpt count u32 | then length-prefixed
// (u32) strings: mail_from, client, each rcpt; then, when flags has kEnvelopeDsn: RET u8, ENVID string,
// and per recipient NOTIFY u8, ORCPT type string, ORCPT address string.
constexpr size_t kEnvelopeFixed = 24;

void put_string(std::vector<uint8_t>& out, size_t& pos, std::string_view s) {
  put32(out.data() + pos, static_cast<uint32_t>(s.size()));
  std::memcpy(out.data() + pos + 4, s.data(), s.size());
  pos += 4 + s.size();
}

}  // namespace

void encode_segment_header(uint8_t out[kSegmentHeaderSize], unsigned writer_id, uint64_t segment_id) {
  std::memset(out, 0, kSegmentHeaderSize);
  std::memcpy(out, kSegmentMagic, 8);
  put32(out + 8, kFormatVersion);
  put32(out + 12, writer_id);
  put64(out + 16, segment_id);
  put32(out + 28, crc32c(0, out, 28));
}

Result<SegmentHeader> decode_segment_header(const uint8_t* data, size_t len) {
  if (len < kSegmentHeaderSize) return make_error("segment header is truncated ({} bytes)", len);
  if (std::memcmp(data, kSegmentMagic, 8) != 0) return make_error("not a ringmail spool segment (bad magic)");
  if (get32(data + 28) != crc32c(0, data, 28)) return make_error("segment header checksum mismatch");
  if (get32(data + 8) != kFormatVersion) return make_error("unsupported segment version {}", get32(data + 8));
  return SegmentHeader{get32(data + 12), get64(data + 16)};
}

size_t encoded_envelope_size(const StoredEnvelope& env) {
  size_t n = kEnvelopeFixed + 8 + env.mail_from.size() + env.client.size();
  for (const auto& r : env.rcpts) n += 4 + r.size();
  if (env.has_dsn_params()) {
    n += 1 + 4 + env.envid.size();
    for (size_t i = 0; i < env.rcpts.size(); ++i) {
      const RecipientDsn* d = i < env.rcpt_dsn.size() ? &env.rcpt_dsn[i] : nullptr;
      n += 1 + 8 + (d ? d->orcpt_type.size() + d->orcpt.size() : 0);
    }
  }
  return n;
}

void append_message_record(std::vector<uint8_t>& out, const StoredEnvelope& env, std::string_view body) {
  const size_t env_len = encoded_envelope_size(env);
  const size_t start = out.size();
  const size_t total = record_size(env_len, body.size());
  out.resize(start + total);  // value-initialises: padding is zero
  uint8_t* h = out.data() + start;
  std::memset(h, 0, kRecordHeaderSize);
  put32(h, kRecordMagic);
  h[4] = static_cast<uint8_t>(RecordType::kMessage);
  put32(h + 8, static_cast<uint32_t>(env_len));
  put64(h + 16, body.size());
  put64(h + 24, env.id);

  size_t pos = start + kRecordHeaderSize;
  uint8_t* e = out.data() + pos;
  put64(e, env.id);
  put64(e + 8, static_cast<uint64_t>(to_unix_ms(env.arrival)));
  bool dsn = env.has_dsn_params();
  put32(e + 16, dsn ? (env.flags | kEnvelopeDsn) : (env.flags & ~kEnvelopeDsn));
  put32(e + 20, static_cast<uint32_t>(env.rcpts.size()));
  pos += kEnvelopeFixed;
  put_string(out, pos, env.mail_from);
  put_string(out, pos, env.client);
  for (const auto& r : env.rcpts) put_string(out, pos, r);
  if (dsn) {  // RET, ENVID, then NOTIFY and ORCPT per recipient
    out[pos++] = env.dsn_ret;
    put_string(out, pos, env.envid);
    static const RecipientDsn kNone;
    for (size_t i = 0; i < env.rcpts.size(); ++i) {
      const RecipientDsn& d = i < env.rcpt_dsn.size() ? env.rcpt_dsn[i] : kNone;
      out[pos++] = d.notify;
      put_string(out, pos, d.orcpt_type);
      put_string(out, pos, d.orcpt);
    }
  }
  if (!body.empty()) std::memcpy(out.data() + pos, body.data(), body.size());

  h = out.data() + start;  // (no reallocation since resize, but keep it obvious)
  uint32_t crc = crc32c(0, h, kRecordHeaderSize);
  crc = crc32c(crc, h + kRecordHeaderSize, env_len + body.size());
  put32(h + 12, crc);
}

bool is_zero_header(const uint8_t* data) {
  for (size_t i = 0; i < kRecordHeaderSize; ++i)
    if (data[i] != 0) return false;
  return true;
}

bool decode_record_header(const uint8_t* data, RecordHeader* out) {
  if (get32(data) != kRecordMagic) return false;
  if (data[4] != static_cast<uint8_t>(RecordType::kMessage)) return false;
  out->type = RecordType::kMessage;
  out->flags = data[5];
  out->envelope_len = get32(data + 8);
  out->crc = get32(data + 12);
  out->body_len = get64(data + 16);
  out->id = get64(data + 24);
  return out->envelope_len >= kEnvelopeFixed + 8 && out->envelope_len <= kMaxEnvelopeLen &&
         out->body_len < (1ull << 48);
}

bool record_crc_ok(const uint8_t* header_bytes, const uint8_t* payload, uint64_t payload_len) {
  uint8_t h[kRecordHeaderSize];
  std::memcpy(h, header_bytes, kRecordHeaderSize);
  put32(h + 12, 0);
  uint32_t crc = crc32c(0, h, kRecordHeaderSize);
  crc = crc32c(crc, payload, payload_len);
  return crc == get32(header_bytes + 12);
}

Result<StoredEnvelope> decode_envelope(const uint8_t* data, size_t len) {
  if (len < kEnvelopeFixed) return make_error("envelope truncated");
  StoredEnvelope env;
  env.id = get64(data);
  env.arrival = from_unix_ms(static_cast<int64_t>(get64(data + 8)));
  env.flags = get32(data + 16);
  uint32_t nrcpt = get32(data + 20);
  size_t pos = kEnvelopeFixed;
  auto take = [&](std::string& s) -> bool {
    if (len - pos < 4) return false;
    uint32_t n = get32(data + pos);
    if (len - pos - 4 < n) return false;
    s.assign(reinterpret_cast<const char*>(data + pos + 4), n);
    pos += 4 + n;
    return true;
  };
  if (!take(env.mail_from) || !take(env.client)) return make_error("envelope truncated");
  if (nrcpt > (len - pos) / 4) return make_error("envelope recipient count {} too large", nrcpt);
  env.rcpts.resize(nrcpt);
  for (auto& r : env.rcpts)
    if (!take(r)) return make_error("envelope truncated in recipients");
  if (env.flags & kEnvelopeDsn) {
    if (pos >= len) return make_error("envelope truncated in DSN parameters");
    env.dsn_ret = data[pos++];
    if (!take(env.envid)) return make_error("envelope truncated in DSN parameters");
    env.rcpt_dsn.resize(nrcpt);
    for (auto& d : env.rcpt_dsn) {
      if (pos >= len) return make_error("envelope truncated in DSN parameters");
      d.notify = data[pos++];
      if (!take(d.orcpt_type) || !take(d.orcpt)) return make_error("envelope truncated in DSN parameters");
    }
    env.flags &= ~kEnvelopeDsn;
  }
  if (pos != len) return make_error("envelope has {} trailing bytes", len - pos);
  return env;
}

void encode_journal_header(uint8_t out[kJournalHeaderSize], unsigned writer_id) {
  std::memcpy(out, kJournalMagic, 8);
  put32(out + 8, kFormatVersion);
  put32(out + 12, writer_id);
}

bool journal_header_ok(const uint8_t* data, size_t len) {
  return len >= kJournalHeaderSize && std::memcmp(data, kJournalMagic, 8) == 0 &&
         get32(data + 8) == kFormatVersion;
}

void encode_journal_record(uint8_t out[kJournalRecordSize], const DeliveryUpdate& u) {
  std::memset(out, 0, kJournalRecordSize);
  put32(out, kJournalRecordMagic);
  out[4] = static_cast<uint8_t>(u.state);
  out[5] = u.flags;
  put32(out + 8, u.rcpt);
  put32(out + 12, u.attempts);
  put64(out + 16, u.id);
  put64(out + 24, static_cast<uint64_t>(to_unix_ms(u.next_attempt)));
  put32(out + 32, crc32c(0, out, 32));
}

bool decode_journal_record(const uint8_t* data, DeliveryUpdate* out) {
  if (get32(data) != kJournalRecordMagic || get32(data + 32) != crc32c(0, data, 32)) return false;
  if (data[4] > static_cast<uint8_t>(RcptState::kFailed)) return false;
  out->state = static_cast<RcptState>(data[4]);
  out->flags = data[5];
  out->rcpt = get32(data + 8);
  out->attempts = get32(data + 12);
  out->id = get64(data + 16);
  out->next_attempt = from_unix_ms(static_cast<int64_t>(get64(data + 24)));
  return true;
}

}  // namespace format
}  // namespace ringmail::queue
