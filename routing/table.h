// The compiled routing table: an immutable structure built from a Config for one node, answering
// "which connector serves this recipient domain for a message of this size?". select() is the
// allocation-free hot path; explain() says why, for the route tool and logs. Publication to
// worker threads is in routing/publisher.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "routing/connector.h"
#include "routing/huge_array.h"

namespace ringmail::routing {

// Why no connector was chosen (rule 5). kNone when one was.
enum class Unreachable : uint8_t {
  kNone,
  kNoMatch,          // no address space matches the domain
  kMessageTooLarge,  // matches exist, but every usable one has a max_message_size below the size
  kNotForThisNode,   // matches exist, but their `nodes` lists exclude this node (or disabled)
  kAllDisabled,      // matches exist, but every matching connector is disabled
  kInvalidDomain,    // the domain is not a valid name (empty label, too long, bad IDN)
};
std::string_view unreachable_reason(Unreachable u);

// How specifically a space matched; higher is more specific.
enum class MatchLevel : uint8_t { kNone, kAll, kWildcard, kExact };

// The hot-path answer: pointers into the Table's Config, valid while the Table lives.
struct Selection {
  const Connector* connector = nullptr;     // the winner, or null
  const AddressSpace* space = nullptr;      // the winner's matched address space
  MatchLevel level = MatchLevel::kNone;     // how it matched
  Unreachable unreachable = Unreachable::kNone;  // why nothing was chosen
};

// The rule that made a candidate lose.
enum class LossRule : uint8_t {
  kDisabled,         // rule 1: enabled = false
  kNotForThisNode,   // rule 1: `nodes` does not list this node
  kMessageTooLarge,  // rule 1: max_message_size below the message size
  kLessSpecific,     // rule 3: the winner's space is more specific
  kHigherCost,       // rule 4a: same specificity, higher cost
  kNotLocal,         // rule 4b: same cost, the winner is on this node and this one is not
  kNameOrder,        // rule 4c: same cost and locality, the winner's name sorts first
};
std::string_view loss_rule_text(LossRule r);

struct RunnerUp {
  const Connector* connector = nullptr;  // the candidate that lost
  const AddressSpace* space = nullptr;   // its most specific matching space
  LossRule rule = LossRule::kLessSpecific;  // why it lost
};

struct Explanation {
  std::string domain;                    // the normalised domain that was matched
  Selection selection;                   // the same answer select() gives
  std::vector<RunnerUp> runners_up;      // every other matching connector, in selection order
};

class Table {
 public:
  // Compiles a validated Config for the node that will use the table.
  static Result<std::shared_ptr<const Table>> build(std::shared_ptr<const Config> config,
                                                    NodeIdentity node);

  // The connector for a recipient domain and message size (bytes), or null with out->unreachable
  // set. Does not allocate for ASCII domains; non-ASCII domains take the IDN path (allocates).
  const Connector* select(std::string_view domain, uint64_t message_size, Selection* out) const;

  // The same decision with every losing candidate and its rule. Allocates.
  Explanation explain(std::string_view domain, uint64_t message_size) const;

  const Config& config() const { return *config_; }
  const NodeIdentity& node() const { return node_; }
  size_t address_space_count() const { return space_count_; }
  // Whether a connector counts as on this node for tie-break 4b.
  bool is_local(const Connector& c) const;

  // Internal layout, public so the implementation's helpers can name it.
  struct Entry {                    // one (connector, address space) pair, 16 bytes
    const AddressSpace* space;      // into config(); its cost is the entry's cost
    uint32_t connector;             // index into config().connectors, flags, status << 30
    uint32_t size_limit;            // max_message_size; 0 = unlimited; kLimitInConnector when it
                                    // does not fit (then the connector's own field is read)
    uint32_t connector_index() const { return connector & kIndexMask; }
    uint32_t status() const { return connector >> 30; }
  };
  static constexpr uint32_t kIndexMask = (uint32_t{1} << 28) - 1;
  static constexpr uint32_t kLastInRecord = uint32_t{1} << 28;  // flag in Entry::connector
  static constexpr uint32_t kWildcardRun = uint32_t{1} << 29;   // flag in Entry::connector
  static constexpr uint32_t kLimitInConnector = UINT32_MAX;

 private:
  Table() = default;
  static bool is_address_literal(std::string_view domain);
  const std::byte* find(uint64_t hash, std::string_view key) const;
  template <typename Visit>
  Unreachable walk(std::string_view normalized, Visit&& visit) const;
  bool too_large(const Entry& e, uint64_t message_size) const {
    return e.size_limit != 0 && message_size > e.size_limit &&
           (e.size_limit != kLimitInConnector ||
            message_size > connectors_[e.connector_index()].max_message_size);
  }
  const Connector* select_slow(std::string_view given, uint64_t message_size, Selection* out) const;
  const Connector* select_normalized(std::string_view name, uint64_t message_size,
                                     Selection* out) const;

  std::shared_ptr<const Config> config_;  // owns the connectors the results point into
  NodeIdentity node_;                     // who this table was built for
  const Connector* connectors_ = nullptr; // config_->connectors.data()
  HugePageArray<uint64_t> index_;         // open addressing, 8 slots per cache line: 24-bit
                                          // fingerprint, key length, record offset in words + 1;
                                          // 0 = empty
  HugePageArray<std::byte> records_;      // per key: the key zero-padded to whole words, then
                                          // its exact and wildcard runs of Entries
  uint64_t index_mask_ = 0;               // index_.size() - 1
  std::vector<Entry> all_;                // the "*" run, sorted by tie-breaks
  size_t space_count_ = 0;                // address spaces compiled in
  uint64_t exact_labels_ = 0;             // bit n: some exact key has n labels (63: >= 63)
  uint64_t wildcard_labels_ = 0;          // bit n: some wildcard key has n labels
};

}  // namespace ringmail::routing
