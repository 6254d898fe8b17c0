// Routing table compilation and lookup (see table.h).
//
// Layout, sized so that a 100k-space table mostly stays in cache: every distinct domain key (the
// "example.com" of both "example.com" and "*.example.com") has one 8-byte slot in a power-of-two
// open-addressing index (24-bit hash fingerprint, key length, record offset) and one record in a
// contiguous arena: the key zero-padded to whole words, then its exact and wildcard runs of
// 16-byte Entries, each pre-sorted by the tie-breaks cost, locality, name (flag bits in the
// Entry mark the wildcard run and the record's end). "*" has its own run. Suffixes whose label
// count no key has are not probed.
// A lookup lower-cases the domain into a stack buffer, finds the dots eight bytes at a time,
// hashes every label-boundary suffix in one right-to-left pass (each suffix's hash extends the
// one to its right), prefetches every index slot and then every candidate record, and only then
// compares keys, longest suffix first; the first eligible Entry in specificity order wins.
// Nothing on that path allocates for ASCII names.
#include "routing/table.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <new>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "common/net.h"
#include "common/strings.h"
#include "routing/domain.h"

namespace ringmail::routing {
namespace {

enum EntryStatus : uint8_t { kUsable = 0, kDisabled = 1, kNotForNode = 2 };
static_assert(sizeof(Table::Entry) == 16 && alignof(Table::Entry) == 8, "2 words in a record");

constexpr size_t kMaxLabels = kMaxDomainLength / 2 + 2;  // "a.b.c..." has at most 127 labels
constexpr uint64_t kSeed = 0x9e3779b97f4a7c15ull;
constexpr uint64_t kMul = 0xff51afd7ed558ccdull;

constexpr size_t kPadding = 16;  // zero bytes after a name given to walk() or hash_suffixes()

inline uint64_t load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// Folds one label into the running hash, eight bytes per step. Reads up to 16 bytes past the
// label's start or 8 past its end, which the caller's padding makes safe; they are masked off.
inline uint64_t low_bytes(size_t n) {  // mask of the low n bytes, n <= 8
  return n >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * n)) - 1;
}
inline uint64_t hash_label(uint64_t h, const char* p, size_t n) {
  const uint64_t length_bits = uint64_t{n} << 59;
  if (n > 16) {  // rare: whole words first
    do {
      h = (h ^ load8(p)) * kMul;
      h ^= h >> 32;
      p += 8;
      n -= 8;
    } while (n > 16);
  }
  // Labels are short: two masked words, without a data-dependent branch.
  h = (h ^ (load8(p) & low_bytes(n))) * kMul;
  h ^= h >> 32;
  h = (h ^ (load8(p + 8) & low_bytes(n > 8 ? n - 8 : 0)) ^ length_bits) * kMul;
  return h ^ (h >> 29);
}

// Lower-cases ASCII letters in place, eight bytes per step (SWAR); returns false if any byte is
// not 7-bit. The buffer must hold `n` rounded up to 8 bytes.
inline bool lower_ascii_in_place(char* p, size_t n) {
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  uint64_t seen_high = 0;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w = load8(p + i);
    uint64_t heptets = w & ~kHigh;
    uint64_t at_least_a = heptets + 0x3f3f3f3f3f3f3f3full;  // high bit set where byte >= 'A'
    uint64_t above_z = heptets + 0x2525252525252525ull;     // high bit set where byte > 'Z'
    uint64_t upper = at_least_a & ~above_z & ~w & kHigh;
    seen_high |= w;
    w |= upper >> 2;  // 0x80 >> 2 == 0x20, the case bit
    std::memcpy(p + i, &w, 8);
  }
  return (seen_high & kHigh) == 0;
}

// The verdict of domain_syntax_error() (empty, not "why") for a lower-cased ASCII name of n octets
// followed by kPadding zero bytes, as select() holds it. Names up to 64 octets (nearly all) are
// checked with SSE2 masks — one 16-byte block per 16 octets — instead of domain_syntax_error's
// byte loop, whose data-dependent branches cost about 40 ns per lookup; longer names take the loop.
bool domain_syntax_ok(const char* p, size_t n) {
#ifdef __SSE2__
  if (n <= 64) {
    uint64_t ok = 0, dot = 0, hyphen = 0;
    for (size_t i = 0; i < n; i += 16) {  // reads at most n + 15 octets: within the zero padding
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      auto in = [&](char lo, char hi) {  // signed compares: every octet is ASCII here
        return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(lo - 1))),
                             _mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(hi + 1))));
      };
      const __m128i d = _mm_cmpeq_epi8(v, _mm_set1_epi8('.'));
      const __m128i h = _mm_cmpeq_epi8(v, _mm_set1_epi8('-'));
      const __m128i good = _mm_or_si128(_mm_or_si128(in('a', 'z'), in('0', '9')),
                                        _mm_or_si128(_mm_or_si128(d, h), _mm_cmpeq_epi8(v, _mm_set1_epi8('_'))));
      ok |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(good))} << i;
      dot |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(d))} << i;
      hyphen |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(h))} << i;
    }
    const uint64_t all = n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
    const uint64_t edge = (dot | hyphen) & all;
    return n > 0 && (ok & all) == all &&
           !(edge & 1) && !(edge >> (n - 1) & 1) &&  // no '.' or '-' first or last
           !(dot & (dot >> 1) & all) &&               // no empty label
           !((dot << 1) & hyphen & all) &&            // no label starting with '-'
           !((hyphen << 1) & dot & all) &&            // no label ending with '-'
           !(n == 64 && (dot & all) == 0);            // no label over 63 octets
  }
#endif
  return domain_syntax_error(std::string_view(p, n)).empty();
}

// Finishes a suffix hash (murmur3's 64-bit finaliser) so low bits index the table well.
inline uint64_t hash_finish(uint64_t h, size_t length) {
  h ^= length;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

// Bit i of dots[i / 64] is set where name[i] == '.': eight bytes per step (SWAR), so finding
// label boundaries needs no per-byte loop and no per-byte branch. Reads `n` rounded up to 8.
inline void find_dots(const char* p, size_t n, uint64_t dots[4]) {
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7full;
  dots[0] = dots[1] = dots[2] = dots[3] = 0;
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t x = load8(p + i) ^ 0x2e2e2e2e2e2e2e2eull;  // zero bytes where '.'
    const uint64_t zero = ~(((x & kLow7) + kLow7) | x | kLow7);  // 0x80 in exactly those
    const uint64_t bits = ((zero >> 7) * 0x0102040810204080ull) >> 56;  // byte j -> bit j
    dots[i / 64] |= bits << (i % 64);
  }
}

// Position of the last '.' before `end`, or -1.
inline ptrdiff_t last_dot_before(const uint64_t dots[4], size_t end) {
  for (ptrdiff_t w = static_cast<ptrdiff_t>((end + 63) / 64) - 1; w >= 0; --w) {
    uint64_t bits = dots[w];
    const size_t below = end - static_cast<size_t>(w) * 64;  // bits of this word before end
    if (below < 64) bits &= (uint64_t{1} << below) - 1;
    if (bits != 0) return w * 64 + 63 - std::countl_zero(bits);
  }
  return -1;
}

// Hashes every label-boundary suffix of `name`, from the last label (k = 0) to the whole name:
// the hash runs label by label from the right, so each suffix's hash extends the previous one.
// Fills hashes[k] and starts[k]; returns the count, or 0 for an empty or over-long label.
// `name` must be followed by kPadding readable zero bytes.
size_t hash_suffixes(std::string_view name, uint64_t* hashes, uint16_t* starts) {
  if (name.empty() || name.size() > kMaxDomainLength) return 0;
  uint64_t dots[4];
  find_dots(name.data(), name.size(), dots);
  size_t count = 0;
  uint64_t h = kSeed;
  size_t end = name.size();
  for (;;) {
    const size_t begin = static_cast<size_t>(last_dot_before(dots, end) + 1);
    const size_t length = end - begin;
    if (length == 0 || length > kMaxLabelLength) return 0;
    h = hash_label(h, name.data() + begin, length);
    starts[count] = static_cast<uint16_t>(begin);
    hashes[count++] = hash_finish(h, name.size() - begin);
    if (begin == 0) return count;
    end = begin - 1;
    if (end == 0) return 0;  // leading dot
  }
}

size_t label_count(std::string_view name) {
  return static_cast<size_t>(std::count(name.begin(), name.end(), '.')) + 1;
}

// The hash a lookup computes for a whole key (already normalised).
uint64_t hash_key(std::string_view key) {
  char padded[kMaxDomainLength + kPadding];
  const size_t n = std::min(key.size(), kMaxDomainLength);
  std::memcpy(padded, key.data(), n);
  std::memset(padded + n, 0, kPadding);
  uint64_t hashes[kMaxLabels];
  uint16_t starts[kMaxLabels];
  size_t count = hash_suffixes(std::string_view(padded, n), hashes, starts);
  return count ? hashes[count - 1] : 0;
}

constexpr size_t round_up8(size_t n) { return (n + 7) & ~size_t{7}; }

// The runs of the record at `record` whose key has `key_length` bytes (exact run first).
// The upper 32 bits of an index slot: 24 bits of hash fingerprint, then the key length.
inline uint64_t slot_tag(uint64_t hash, size_t key_length) { return ((hash >> 40) << 8) | key_length; }

inline Table::Entry* entries_of(std::byte* record, size_t key_length) {
  return std::launder(reinterpret_cast<Table::Entry*>(record + round_up8(key_length)));
}
inline const Table::Entry* entries_of(const std::byte* record, size_t key_length) {
  return std::launder(reinterpret_cast<const Table::Entry*>(record + round_up8(key_length)));
}

}  // namespace

std::string_view unreachable_reason(Unreachable u) {
  switch (u) {
    case Unreachable::kNone: return "routed";
    case Unreachable::kNoMatch: return "no address space matches the domain";
    case Unreachable::kMessageTooLarge:
      return "every matching connector's max_message_size is below the message size";
    case Unreachable::kNotForThisNode: return "no matching connector may be used by this node";
    case Unreachable::kAllDisabled: return "every matching connector is disabled";
    case Unreachable::kInvalidDomain: return "the domain is not a valid name";
  }
  return "?";
}

std::string_view loss_rule_text(LossRule r) {
  switch (r) {
    case LossRule::kDisabled: return "rule 1: connector is disabled";
    case LossRule::kNotForThisNode: return "rule 1: connector's nodes do not include this node";
    case LossRule::kMessageTooLarge: return "rule 1: max_message_size is below the message size";
    case LossRule::kLessSpecific: return "rule 3: the winner's address space is more specific";
    case LossRule::kHigherCost: return "rule 4: higher cost";
    case LossRule::kNotLocal: return "rule 4: the winner is on this node, this one is not";
    case LossRule::kNameOrder: return "rule 4: the winner's name sorts first";
  }
  return "?";
}

static std::string canonical_address(const std::string& text) {
  auto addr = SocketAddress::parse(text, 0);
  return addr ? addr->host() : text;
}

bool Table::is_local(const Connector& c) const {
  for (const std::string& n : c.nodes)
    if (n == node_.name) return true;
  for (const std::string& a : c.source_addresses)
    for (const std::string& mine : node_.addresses)
      if (a == mine) return true;
  return false;
}

Result<std::shared_ptr<const Table>> Table::build(std::shared_ptr<const Config> config,
                                                  NodeIdentity node) {
  if (!config) return make_error("routing table: no configuration");
  std::shared_ptr<Table> table(new Table());
  table->config_ = std::move(config);
  for (std::string& a : node.addresses) a = canonical_address(a);
  table->node_ = std::move(node);
  const std::vector<Connector>& connectors = table->config_->connectors;
  table->connectors_ = connectors.data();
  if (connectors.size() > kIndexMask) return make_error("routing table: too many connectors");

  // Tie-breaks 4b and 4c as one number: rank[ci] orders local connectors first, then by name.
  std::vector<uint32_t> order(connectors.size());
  std::vector<uint8_t> local(connectors.size());
  for (size_t i = 0; i < connectors.size(); ++i) {
    order[i] = static_cast<uint32_t>(i);
    local[i] = table->is_local(connectors[i]);
  }
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (local[a] != local[b]) return local[a] > local[b];
    return connectors[a].name < connectors[b].name;
  });
  std::vector<uint32_t> rank(connectors.size());
  for (size_t i = 0; i < order.size(); ++i) rank[order[i]] = static_cast<uint32_t>(i);
  auto before = [&](const Entry& a, const Entry& b) {  // rule 4: cost, locality, name
    if (a.space->cost != b.space->cost) return a.space->cost < b.space->cost;
    return rank[a.connector_index()] < rank[b.connector_index()];
  };

  size_t keyed_spaces = 0;
  for (const Connector& c : connectors) {
    table->space_count_ += c.address_spaces.size();
    for (const AddressSpace& s : c.address_spaces) keyed_spaces += s.kind != PatternKind::kAll;
  }
  if (keyed_spaces >= UINT32_MAX / 2) return make_error("routing table: too many address spaces");
  // Load factor 0.4-0.8: the smaller index stays in cache, which matters more than the longer
  // probes (8 slots a cache line). Measured at 100k spaces: median 130-150 ns with 1 MiB of
  // index, 190-210 ns with 2 MiB (load 0.38), in the same period.
  const size_t capacity = std::bit_ceil(std::max<size_t>(16, keyed_spaces + keyed_spaces / 4));
  if (!table->index_.allocate(capacity))
    return make_error("routing table: cannot map {} index slots", capacity);
  table->index_mask_ = capacity - 1;

  // Pass 1: intern every key in the index itself (value = key number + 1 for now).
  struct Key {
    std::string_view domain;  // into the Config
    uint32_t exact = 0;       // entries of the exact pattern
    uint32_t wildcard = 0;    // entries of "*.domain"
    size_t record = 0;        // byte offset of its record in records_
  };
  std::vector<Key> keys;
  keys.reserve(keyed_spaces);
  std::vector<uint32_t> key_of_space;  // in connector/space order, kAll spaces skipped
  key_of_space.reserve(keyed_spaces);
  for (const Connector& c : connectors) {
    for (const AddressSpace& s : c.address_spaces) {
      if (s.kind == PatternKind::kAll) continue;
      const uint64_t h = hash_key(s.domain);
      const uint64_t tag = slot_tag(h, s.domain.size());
      uint32_t key = 0;
      for (size_t i = h & table->index_mask_;; i = (i + 1) & table->index_mask_) {
        uint64_t& slot = table->index_[i];
        if (slot == 0) {
          key = static_cast<uint32_t>(keys.size());
          slot = (tag << 32) | (key + 1);
          keys.push_back(Key{s.domain});
          break;
        }
        if ((slot >> 32) == tag && keys[(slot & 0xffffffff) - 1].domain == s.domain) {
          key = static_cast<uint32_t>((slot & 0xffffffff) - 1);
          break;
        }
      }
      ++(s.kind == PatternKind::kExact ? keys[key].exact : keys[key].wildcard);
      key_of_space.push_back(key);
    }
  }

  // Pass 2: lay out the records (key, exact run, wildcard run), then fill the runs.
  size_t bytes = 0;
  for (Key& k : keys) {
    k.record = bytes;
    bytes += round_up8(k.domain.size()) + sizeof(Entry) * (k.exact + k.wildcard);
    const uint64_t label_bit = uint64_t{1} << std::min<size_t>(63, label_count(k.domain));
    if (k.exact) table->exact_labels_ |= label_bit;
    if (k.wildcard) table->wildcard_labels_ |= label_bit;
  }
  if (bytes / 8 >= UINT32_MAX) return make_error("routing table: too large");
  if (!table->records_.allocate(bytes))
    return make_error("routing table: cannot map {} bytes of records", bytes);
  std::byte* records = table->records_.data();
  std::vector<uint32_t> filled(keys.size());  // exact entries placed so far, per key
  std::vector<uint32_t> filled_wild(keys.size());
  for (const Key& k : keys)
    std::memcpy(records + k.record, k.domain.data(), k.domain.size());  // padding stays zero
  size_t space_number = 0;
  for (size_t ci = 0; ci < connectors.size(); ++ci) {
    const Connector& c = connectors[ci];
    bool for_node = c.nodes.empty() ||
                    std::find(c.nodes.begin(), c.nodes.end(), table->node_.name) != c.nodes.end();
    const uint32_t status = !c.enabled ? kDisabled : (!for_node ? kNotForNode : kUsable);
    const uint32_t size_limit = c.max_message_size < kLimitInConnector
                                    ? static_cast<uint32_t>(c.max_message_size)
                                    : kLimitInConnector;
    for (const AddressSpace& s : c.address_spaces) {
      const Entry e{&s, static_cast<uint32_t>(ci) | (status << 30), size_limit};
      if (s.kind == PatternKind::kAll) {
        table->all_.push_back(e);
        continue;
      }
      const uint32_t key = key_of_space[space_number++];
      const Key& k = keys[key];
      Entry* run = entries_of(records + k.record, k.domain.size());
      if (s.kind == PatternKind::kExact) {
        new (run + filled[key]++) Entry(e);
      } else {
        new (run + k.exact + filled_wild[key]++) Entry(e);
        run[k.exact + filled_wild[key] - 1].connector |= kWildcardRun;
      }
    }
  }
  for (const Key& k : keys) {
    Entry* run = entries_of(records + k.record, k.domain.size());
    if (k.exact > 1) std::sort(run, run + k.exact, before);
    if (k.wildcard > 1) std::sort(run + k.exact, run + k.exact + k.wildcard, before);
    run[k.exact + k.wildcard - 1].connector |= kLastInRecord;
  }
  std::sort(table->all_.begin(), table->all_.end(), before);
  // The index now points at records (in 8-byte words, + 1 so that 0 stays "empty").
  for (size_t i = 0; i < capacity; ++i) {
    uint64_t& slot = table->index_[i];
    if (slot != 0) slot = (slot & ~uint64_t{0xffffffff}) | (keys[(slot & 0xffffffff) - 1].record / 8 + 1);
  }
  return std::shared_ptr<const Table>(std::move(table));
}

// Whether the record at `record`, whose length the index slot already matched, holds `key`.
// Word compare: the stored key is zero-filled to a whole word, and `key` is a suffix of a name
// followed by kPadding zero bytes, so the bytes past the end compare equal.
inline bool record_is(const std::byte* record, std::string_view key) {
  const char* stored = reinterpret_cast<const char*>(record);
  uint64_t diff = 0;
  for (size_t b = 0; b < key.size(); b += 8) diff |= load8(stored + b) ^ load8(key.data() + b);
  return diff == 0;
}

// The record of `key` (key, runs), or null.
const std::byte* Table::find(uint64_t hash, std::string_view key) const {
  const uint64_t tag = slot_tag(hash, key.size());
  for (size_t i = hash & index_mask_;; i = (i + 1) & index_mask_) {
    const uint64_t slot = index_[i];
    if (slot == 0) return nullptr;
    if ((slot >> 32) != tag) continue;
    const std::byte* record = records_.data() + ((slot & 0xffffffff) - 1) * 8;
    if (record_is(record, key)) return record;
  }
}

// Calls visit(entry, level, group) for every matching entry in selection order: the exact run,
// then wildcard runs from the longest suffix to the shortest, then "*". `group` numbers the runs,
// so equal groups mean equally specific. Stops when visit returns true. `name` must already be
// lower-case without a trailing dot, followed by kPadding readable zero bytes; returns
// kInvalidDomain for an empty or over-long label.
template <typename Visit>
Unreachable Table::walk(std::string_view name, Visit&& visit) const {
  uint64_t hashes[kMaxLabels];
  uint16_t starts[kMaxLabels];
  const size_t suffixes = hash_suffixes(name, hashes, starts);
  if (suffixes == 0) return Unreachable::kInvalidDomain;
  // Suffix k (0 = the last label) has k + 1 labels; keys of other label counts are not probed.
  auto wanted = [&](size_t k) {
    const uint64_t mask = k == suffixes - 1 ? (exact_labels_ | wildcard_labels_) : wildcard_labels_;
    return (mask >> std::min<size_t>(63, k + 1)) & 1;
  };
  // The probes are independent: start every index miss, then every record miss, before
  // waiting on the first one. The index (8 bytes a key) mostly stays in cache.
  for (size_t k = 0; k < suffixes; ++k)
    if (wanted(k)) __builtin_prefetch(&index_[hashes[k] & index_mask_]);
  // Per suffix, the first record with its tag (null: the key is certainly absent).
  const std::byte* candidates[kMaxLabels];
  for (size_t k = 0; k < suffixes; ++k) {
    candidates[k] = nullptr;
    if (!wanted(k)) continue;
    const uint64_t tag = slot_tag(hashes[k], name.size() - starts[k]);
    for (size_t i = hashes[k] & index_mask_;; i = (i + 1) & index_mask_) {
      const uint64_t slot = index_[i];
      if (slot == 0) break;
      if ((slot >> 32) != tag) continue;
      candidates[k] = records_.data() + ((slot & 0xffffffff) - 1) * 8;
      __builtin_prefetch(candidates[k]);
      __builtin_prefetch(candidates[k] + 64);
      break;
    }
  }

  uint32_t group = 0;
  for (size_t k = suffixes; k-- > 0;) {
    if (candidates[k] == nullptr) continue;
    const bool full = k == suffixes - 1;
    const std::string_view key = name.substr(starts[k]);
    // A tag collision (rare) falls back to the full probe.
    const std::byte* record = record_is(candidates[k], key) ? candidates[k] : find(hashes[k], key);
    if (record == nullptr) continue;
    const Entry* e = entries_of(record, key.size());
    bool wildcards = true;  // whether a wildcard run follows
    if (!(e->connector & kWildcardRun)) {  // the exact run comes first
      for (;; ++e) {
        if (full && visit(*e, MatchLevel::kExact, group)) return Unreachable::kNone;
        if (e->connector & kLastInRecord) {
          wildcards = false;
          break;
        }
        if (e[1].connector & kWildcardRun) {
          ++e;
          break;
        }
      }
    }
    ++group;
    for (; wildcards; ++e) {
      if (visit(*e, MatchLevel::kWildcard, group)) return Unreachable::kNone;
      if (e->connector & kLastInRecord) break;
    }
  }
  ++group;
  for (const Entry& e : all_)
    if (visit(e, MatchLevel::kAll, group)) return Unreachable::kNone;
  return Unreachable::kNone;
}

// A recipient domain written as an address literal, "[192.0.2.1]" or "[IPv6:...]" (RFC 5321
// §4.1.3; the listener checked its content).
bool Table::is_address_literal(std::string_view domain) {
  return domain.size() >= 2 && domain.front() == '[' && domain.back() == ']';
}

const Connector* Table::select(std::string_view domain, uint64_t message_size,
                               Selection* out) const {
  *out = Selection{};
  const std::string_view given = domain;
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  if (domain.empty()) {
    out->unreachable = Unreachable::kInvalidDomain;
    return nullptr;
  }
  // Over 253 octets can still be a valid name once converted to A-labels: normalize_domain decides.
  if (domain.size() > kMaxDomainLength) return select_slow(given, message_size, out);
  char lowered[kMaxDomainLength + kPadding];
  std::memcpy(lowered, domain.data(), domain.size());
  std::memset(lowered + domain.size(), 0, kPadding);
  if (__builtin_expect(!lower_ascii_in_place(lowered, domain.size()), 0))
    return select_slow(given, message_size, out);
  // The same syntax rule as explain() (so the two always agree), without allocating. Address
  // literals match only "*" (no address space can contain '[').
  if (!domain_syntax_ok(lowered, domain.size()) && !is_address_literal(domain)) {
    out->unreachable = Unreachable::kInvalidDomain;
    return nullptr;
  }
  return select_normalized(std::string_view(lowered, domain.size()), message_size, out);
}

// Non-ASCII or over-long names: normalize_domain() (which allocates, and drops the trailing dot
// itself), exactly as explain() does.
const Connector* Table::select_slow(std::string_view given, uint64_t message_size, Selection* out) const {
  auto normalized = normalize_domain(given);
  if (!normalized) {
    out->unreachable = Unreachable::kInvalidDomain;
    return nullptr;
  }
  std::string converted = std::move(*normalized);
  converted.append(kPadding, '\0');  // walk() reads past the end of the name
  return select_normalized(std::string_view(converted.data(), converted.size() - kPadding), message_size, out);
}

const Connector* Table::select_normalized(std::string_view name, uint64_t message_size,
                                          Selection* out) const {
  const Entry* winner = nullptr;
  bool saw_too_large = false, saw_not_for_node = false, saw_disabled = false;
  Unreachable walked = walk(name, [&](const Entry& e, MatchLevel level, uint32_t) {
    if (e.status() == kDisabled) {
      saw_disabled = true;
    } else if (e.status() == kNotForNode) {
      saw_not_for_node = true;
    } else if (too_large(e, message_size)) {
      saw_too_large = true;
    } else {
      winner = &e;
      out->level = level;
      return true;
    }
    return false;
  });
  if (walked != Unreachable::kNone) {
    out->unreachable = walked;
    return nullptr;
  }
  if (winner == nullptr) {
    out->unreachable = saw_too_large      ? Unreachable::kMessageTooLarge
                       : saw_not_for_node ? Unreachable::kNotForThisNode
                       : saw_disabled     ? Unreachable::kAllDisabled
                                          : Unreachable::kNoMatch;
    return nullptr;
  }
  out->connector = connectors_ + winner->connector_index();
  out->space = winner->space;
  return out->connector;
}

Explanation Table::explain(std::string_view domain, uint64_t message_size) const {
  Explanation ex;
  std::string_view bare = domain;  // one trailing dot dropped, as select() and normalize_domain() do
  if (!bare.empty() && bare.back() == '.') bare.remove_suffix(1);
  auto normalized =
      is_address_literal(bare) ? Result<std::string>(to_lower_ascii(bare)) : normalize_domain(domain);
  if (!normalized) {
    ex.domain = std::string(domain);
    ex.selection.unreachable = Unreachable::kInvalidDomain;
    return ex;
  }
  ex.domain = std::move(*normalized);
  select(ex.domain, message_size, &ex.selection);

  struct Candidate {
    const Entry* entry;  // the connector's most specific matching entry
    uint32_t group;      // specificity group from walk()
  };
  std::vector<Candidate> candidates;
  std::vector<uint8_t> seen(config_->connectors.size());
  std::string padded = ex.domain + std::string(kPadding, '\0');
  (void)walk(std::string_view(padded.data(), ex.domain.size()), [&](const Entry& e, MatchLevel, uint32_t group) {
    if (!seen[e.connector_index()]) {
      seen[e.connector_index()] = 1;
      candidates.push_back(Candidate{&e, group});
    }
    return false;
  });
  const Candidate* win = nullptr;
  for (const Candidate& c : candidates)
    if (connectors_ + c.entry->connector_index() == ex.selection.connector) win = &c;

  for (const Candidate& c : candidates) {
    if (&c == win) continue;
    const Connector& conn = connectors_[c.entry->connector_index()];
    RunnerUp r{&conn, c.entry->space, LossRule::kLessSpecific};
    if (c.entry->status() == kDisabled) {
      r.rule = LossRule::kDisabled;
    } else if (c.entry->status() == kNotForNode) {
      r.rule = LossRule::kNotForThisNode;
    } else if (too_large(*c.entry, message_size)) {
      r.rule = LossRule::kMessageTooLarge;
    } else if (win == nullptr || c.group != win->group) {
      r.rule = LossRule::kLessSpecific;
    } else if (c.entry->space->cost != win->entry->space->cost) {
      r.rule = LossRule::kHigherCost;
    } else if (is_local(*ex.selection.connector) && !is_local(conn)) {
      r.rule = LossRule::kNotLocal;
    } else {
      r.rule = LossRule::kNameOrder;
    }
    ex.runners_up.push_back(r);
  }
  return ex;
}

}  // namespace ringmail::routing
