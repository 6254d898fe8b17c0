// The compiled routing table: an immutable structure built from a Config for one node, answering
// "which connector serves this recipient domain for a message of this size?". select() is the
// allocation-free hot path; explain() says why, for the route tool and logs. Publication to
// worker threads is in routing/publisher.h.
#pragma once

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
  size_t address_space_count() const { return entries_.size(); }
  // Whether a connector counts as on this node for tie-break 4b.
  bool is_local(const Connector& c) const;

  // Internal layout, public so the implementation's helpers can name it.
  struct Entry {                    // one (connector, address space) pair
    const Connector* connector;     // into config()
    const AddressSpace* space;      // into connector->address_spaces
    uint64_t max_message_size;      // copy of the connector's limit, 0 = unlimited
    uint32_t connector_index;       // index into config().connectors
    uint8_t cost;                   // copy of the space's cost
    uint8_t status;                 // EntryStatus: usable, disabled, not for this node
  };
  static constexpr size_t kInlineKey = 32;
  struct alignas(64) Slot {         // one distinct domain key in the open-addressing table
    uint64_t hash;                  // full hash of the key
    uint32_t exact_begin;           // entries_ of the exact pattern, sorted by tie-breaks
    uint32_t wildcard_begin;        // entries_ of "*.key", sorted by tie-breaks
    uint32_t key_offset;            // into long_keys_ when key_length > kInlineKey
    uint16_t exact_count;
    uint16_t wildcard_count;
    uint16_t key_length;            // bytes; 0 marks an empty slot
    char inline_key[kInlineKey] alignas(8);  // the key, zero-filled, when it fits (usually)
  };

 private:
  Table() = default;
  const Slot* find(uint64_t hash, std::string_view key) const;
  template <typename Visit>
  Unreachable walk(std::string_view normalized, Visit&& visit) const;

  std::shared_ptr<const Config> config_;  // owns the connectors the results point into
  NodeIdentity node_;                     // who this table was built for
  HugePageArray<Entry> entries_;          // runs per key and kind, each sorted by tie-breaks
  HugePageArray<Slot> slots_;             // power-of-two open-addressing table of keys
  HugePageArray<Entry> heads_;            // per slot: first entry of its first run, so a hit
                                          // needs no dependent load (prefetched with the slot)
  uint64_t slot_mask_ = 0;                // slots_.size() - 1
  std::string long_keys_;                 // keys longer than kInlineKey, concatenated
  uint64_t exact_labels_ = 0;             // bit n: some exact key has n labels (63: >= 63)
  uint64_t wildcard_labels_ = 0;          // bit n: some wildcard key has n labels
  uint32_t all_begin_ = 0;                // entries_ of "*"
  uint32_t all_end_ = 0;
};

}  // namespace ringmail::routing
