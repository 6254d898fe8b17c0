// ExpiringCache<V>: the DNS cache mechanism shared by the record cache (name + type → records)
// and the MX answer cache (domain → assembled answer). Entries expire on an injected Clock;
// lifetimes come from cache_lifetime() (TTL clamp, RFC 2308 negative TTL, failure back-off).
// Misses coalesce: the first waiter of a key starts the fetch, later ones attach, complete()
// answers them all. Every waiter has its own deadline. Size is bounded (LRU eviction).
// One cache per worker thread: not thread-safe, and no DNS protocol knowledge here.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "routing/dns/dns_settings.h"

namespace ringmail::routing::dns {

enum class EntryKind : uint8_t {
  kPositive,  // records found: lives for the (clamped) TTL
  kNegative,  // NXDOMAIN / NODATA: lives for the SOA-derived TTL, capped
  kFailure,   // server failure or timeout: lives briefly, doubling with each consecutive failure
};

// How long an entry of `kind` lives. `ttl` is the DNS TTL (seconds); `failure_streak` counts
// earlier consecutive failures of the same key (0 for the first). Zero means "do not store".
std::chrono::seconds cache_lifetime(const CachePolicy& policy, EntryKind kind, uint32_t ttl,
                                    uint32_t failure_streak);

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct CacheStats {
  uint64_t hits = 0;              // find() answered from a fresh entry
  uint64_t misses = 0;            // find() found nothing fresh
  uint64_t fetches = 0;           // wait() started a fetch (first waiter of a key)
  uint64_t coalesced = 0;         // wait() attached to a fetch already running
  uint64_t evictions = 0;         // entries dropped to stay within capacity
  uint64_t waiter_timeouts = 0;   // waiters answered by their deadline, not by the fetch
};

template <class V>
class ExpiringCache {
 public:
  using Value = std::shared_ptr<const V>;
  using Waiter = std::function<void(const Value&)>;  // a null Value: the waiter's deadline passed

  ExpiringCache(const Clock& clock, size_t capacity) : clock_(clock), capacity_(std::max<size_t>(capacity, 1)) {}
  ExpiringCache(const ExpiringCache&) = delete;
  ExpiringCache& operator=(const ExpiringCache&) = delete;

  // The fresh entry for `key`, or null. A hit moves the entry to the front of the LRU list.
  const Value* find(std::string_view key) {
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.expires <= clock_.now() || !it->second.value) {
      ++stats_.misses;
      return nullptr;
    }
    ++stats_.hits;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return &it->second.value;
  }

  // Registers `waiter` for `key`. Returns true when this is the first waiter: the caller must
  // start the fetch and call complete() (possibly much later). False: a fetch is running.
  bool wait(std::string_view key, MonoTime deadline, Waiter waiter) {
    uint64_t id = ++last_waiter_id_;
    waiters_.emplace(id, std::move(waiter));
    if (deadline != MonoTime::max()) deadlines_.push({deadline, id});
    auto it = in_flight_.find(key);
    if (it != in_flight_.end()) {
      ++stats_.coalesced;
      it->second.push_back(id);
      return false;
    }
    ++stats_.fetches;
    in_flight_.emplace(std::string(key), std::vector<uint64_t>{id});
    return true;
  }

  // Stores `value` for `lifetime` (nothing stored when zero) and answers every waiter of `key`.
  // Waiters run after the cache is updated, so they may call find()/wait() again safely.
  void complete(std::string_view key, Value value, std::chrono::nanoseconds lifetime, EntryKind kind) {
    store(key, value, lifetime, kind);
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) return;
    std::vector<uint64_t> ids = std::move(it->second);
    in_flight_.erase(it);
    for (uint64_t id : ids) {
      auto w = waiters_.find(id);
      if (w == waiters_.end()) continue;  // already answered by its deadline
      Waiter fn = std::move(w->second);
      waiters_.erase(w);
      fn(value);
    }
  }

  // Answers (with a null Value) every waiter whose deadline is at or before `now`. The fetch
  // goes on and still fills the cache.
  size_t expire_waiters(MonoTime now) {
    size_t n = 0;
    while (!deadlines_.empty() && deadlines_.top().first <= now) {
      uint64_t id = deadlines_.top().second;
      deadlines_.pop();
      auto w = waiters_.find(id);
      if (w == waiters_.end()) continue;
      Waiter fn = std::move(w->second);
      waiters_.erase(w);
      ++stats_.waiter_timeouts;
      ++n;
      fn(nullptr);
    }
    return n;
  }

  // The earliest deadline of a waiter still waiting.
  std::optional<MonoTime> next_deadline() {
    while (!deadlines_.empty() && !waiters_.count(deadlines_.top().second)) deadlines_.pop();
    if (deadlines_.empty()) return std::nullopt;
    return deadlines_.top().first;
  }

  // Consecutive failures recorded for `key` (kept while the entry exists, fresh or not).
  uint32_t failure_streak(std::string_view key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? 0 : it->second.failure_streak;
  }

  // Drops every waiter without calling it (shutdown).
  void drop_waiters() {
    waiters_.clear();
    in_flight_.clear();
    deadlines_ = {};
  }

  size_t size() const { return entries_.size(); }
  size_t in_flight() const { return in_flight_.size(); }
  size_t waiting() const { return waiters_.size(); }
  const CacheStats& stats() const { return stats_; }

 private:
  struct Entry {
    Value value;                                   // null only while a new entry is being linked
    MonoTime expires{};                            // fresh while now < expires
    EntryKind kind = EntryKind::kPositive;         // what the value says
    uint32_t failure_streak = 0;                   // consecutive kFailure stores
    std::list<const std::string*>::iterator lru;   // position in lru_ (front = most recent)
  };
  using Deadline = std::pair<MonoTime, uint64_t>;  // (deadline, waiter id)

  void store(std::string_view key, const Value& value, std::chrono::nanoseconds lifetime, EntryKind kind) {
    auto it = entries_.find(key);
    uint32_t streak = it == entries_.end() ? 0 : it->second.failure_streak;
    streak = kind == EntryKind::kFailure ? streak + 1 : 0;
    if (lifetime <= std::chrono::nanoseconds::zero()) {
      if (it != entries_.end()) it->second.expires = MonoTime::min();  // stale, keeps the streak
      if (it != entries_.end()) it->second.failure_streak = streak;
      return;
    }
    if (it == entries_.end()) {
      if (entries_.size() >= capacity_) evict_one();
      it = entries_.emplace(std::string(key), Entry{}).first;
      lru_.push_front(&it->first);
      it->second.lru = lru_.begin();
    } else {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
    }
    Entry& e = it->second;
    e.value = value;
    e.expires = clock_.now() + lifetime;
    e.kind = kind;
    e.failure_streak = streak;
  }

  void evict_one() {
    const std::string* victim = lru_.back();
    lru_.pop_back();
    entries_.erase(entries_.find(std::string_view(*victim)));
    ++stats_.evictions;
  }

  const Clock& clock_;
  size_t capacity_;                                                          // max entries
  std::unordered_map<std::string, Entry, StringHash, std::equal_to<>> entries_;  // by key
  std::list<const std::string*> lru_;                                        // keys, most recent first
  std::unordered_map<std::string, std::vector<uint64_t>, StringHash, std::equal_to<>> in_flight_;  // key → waiter ids
  std::unordered_map<uint64_t, Waiter> waiters_;                             // waiting, by id
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines_;  // earliest first
  uint64_t last_waiter_id_ = 0;                                              // ids are never reused
  CacheStats stats_;
};

}  // namespace ringmail::routing::dns
