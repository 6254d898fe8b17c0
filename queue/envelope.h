// What the spool stores and returns about a message: the envelope, where its record lives, and the
// delivery state of each recipient. Plain data; the byte format is in record_format.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "queue/queue_id.h"

namespace ringmail::queue {

inline constexpr uint32_t kEnvelope8BitMime = 1u << 0;  // MAIL FROM had BODY=8BITMIME
inline constexpr uint32_t kEnvelopeSmtpUtf8 = 1u << 1;  // MAIL FROM had SMTPUTF8
inline constexpr uint32_t kEnvelopeDsn = 1u << 2;       // DSN parameters stored (set by the encoder)

// RFC 3461 parameters of one recipient (RCPT ... NOTIFY= ORCPT=).
struct RecipientDsn {
  uint8_t notify = 0;      // queue::dsn::kNotify* bits; 0 = not specified
  std::string orcpt_type;  // ORCPT address type ("rfc822"); empty = none
  std::string orcpt;       // ORCPT address, decoded
  bool operator==(const RecipientDsn&) const = default;
};

struct StoredEnvelope {
  QueueId id = 0;                  // from SpoolWriter::next_id()
  WallTime arrival;                // when the 250 was given (wall clock, stored in ms)
  std::string mail_from;           // empty = null sender
  std::vector<std::string> rcpts;  // forward paths, in RCPT order (index = recipient index)
  uint32_t flags = 0;              // kEnvelope* bits
  std::string client;              // "[ip]:port helo", for logs and admin
  uint8_t dsn_ret = 0;             // MAIL RET= as queue::dsn::Ret; 0 = not given
  std::string envid;               // MAIL ENVID=, decoded; empty = none
  std::vector<RecipientDsn> rcpt_dsn;  // empty, or one per recipient

  bool has_dsn_params() const {
    if (dsn_ret != 0 || !envid.empty()) return true;
    for (const auto& d : rcpt_dsn)
      if (d.notify != 0 || !d.orcpt_type.empty()) return true;
    return false;
  }
  bool operator==(const StoredEnvelope&) const = default;
};

// Where one message record lives; enough to read it back without scanning.
struct MessageLocation {
  uint64_t segment = 0;       // segment id (file seg/<16 hex>.seg)
  uint64_t offset = 0;        // offset of the record header in the segment
  uint32_t envelope_len = 0;  // bytes of encoded envelope
  uint64_t body_len = 0;      // bytes of body
  uint64_t record_len = 0;    // header + envelope + body + padding (what read_message reads)
  bool operator==(const MessageLocation&) const = default;
};

// Delivery state of one recipient, as journaled. Delivered and failed are final.
enum class RcptState : uint8_t {
  kPending = 0,    // no attempt recorded
  kDeferred = 1,   // temporary failure; retry at next_attempt
  kDelivered = 2,  // final: accepted by the next hop
  kFailed = 3,     // final: permanent failure (bounced)
};
constexpr bool is_final(RcptState s) { return s == RcptState::kDelivered || s == RcptState::kFailed; }
const char* rcpt_state_name(RcptState s);

// Per-recipient flags kept in the journal (they only ever get set).
inline constexpr uint8_t kRcptDelayNotified = 1u << 0;  // the delay DSN went out

struct RecipientState {  // 16 bytes: a big queue holds one per recipient
  RcptState state = RcptState::kPending;  // see RcptState
  uint8_t flags = 0;                      // kRcpt* bits
  uint32_t attempts = 0;                  // delivery attempts so far
  WallTime next_attempt;                  // when to retry (kDeferred only)
  bool operator==(const RecipientState&) const = default;
};

// One journal entry: the new state of one recipient of one message.
struct DeliveryUpdate {
  QueueId id = 0;                         // message
  uint32_t rcpt = 0;                      // recipient index in StoredEnvelope::rcpts
  RcptState state = RcptState::kPending;  // new state
  uint32_t attempts = 0;                  // attempts so far
  WallTime next_attempt;                  // retry time for kDeferred
  uint8_t flags = 0;                      // kRcpt* bits to set (never cleared)
};

// Merges an update into a recipient's state so replay is idempotent and order-free: a final
// state wins over a non-final one; among non-final states the one with more attempts wins;
// flags accumulate.
void merge_recipient_state(RecipientState& into, const DeliveryUpdate& u);

}  // namespace ringmail::queue
