// Publication of the current routing table to worker threads without locks on the lookup path.
// The config thread builds a new Table off the hot path and publishes it; each worker owns a
// TableReader and calls refresh() once at the top of every loop iteration, which costs one
// acquire load unless the version changed. Lookups then read the worker's own snapshot.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "routing/config_loader.h"
#include "routing/table.h"

namespace ringmail::routing {

class TablePublisher {
 public:
  explicit TablePublisher(std::shared_ptr<const Table> initial);

  // Makes `next` current. Called from the config thread (reload), never from workers' lookups.
  // The previous table is kept on a retired list so that a worker never has to free it.
  void publish(std::shared_ptr<const Table> next);
  // Frees retired tables that no reader holds any more; returns how many are still held. Called
  // by publish() and worth calling from a periodic timer on the config thread.
  size_t reclaim();
  // Bumped after every publish (release); workers compare it with their own copy (acquire).
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  // The current table. Takes a mutex: called only when the version changed, never per lookup.
  std::shared_ptr<const Table> current() const;

 private:
  void take_unused_locked(std::vector<std::shared_ptr<const Table>>* unused);
  // Why a mutex and not std::atomic<std::shared_ptr>: libstdc++ 12's atomic<shared_ptr> is not
  // lock-free either (an internal lock bit), and its load() releases that lock with relaxed
  // order, which ThreadSanitizer rightly reports as a race with a concurrent store. Both cost
  // about the same, and this path runs once per reload per worker, not per lookup.
  mutable std::mutex table_mutex_;                     // guards table_ and retired_
  std::shared_ptr<const Table> table_;                 // the published table
  std::atomic<uint64_t> version_{1};                   // incremented after each change of table_
  std::vector<std::shared_ptr<const Table>> retired_;  // old tables, freed once unused
};

// One per worker thread; not shared between threads.
class TableReader {
 public:
  explicit TableReader(const TablePublisher& publisher);

  // Takes the newest table if the version changed; returns true if it did. Call at the top of a
  // loop iteration, never in the middle of using results from table().
  bool refresh() {
    uint64_t v = publisher_->version();
    if (v == seen_version_) return false;
    table_ = publisher_->current();
    seen_version_ = v;
    return true;
  }
  const Table& table() const { return *table_; }
  // A copy for work that must outlive the next refresh (a session keeping a stable view).
  const std::shared_ptr<const Table>& snapshot() const { return table_; }
  uint64_t version() const { return seen_version_; }

 private:
  const TablePublisher* publisher_;     // where new tables come from
  uint64_t seen_version_ = 0;           // the version table_ was taken at
  std::shared_ptr<const Table> table_;  // this worker's snapshot
};

// Reload: reads and validates the file, compiles it, publishes it. On any error returns every
// "FILE:LINE: reason" and leaves the current table in place.
struct ReloadOutcome {
  bool published = false;           // a new table is current
  std::vector<std::string> errors;  // why not
  uint64_t version = 0;             // publisher version after the call
};
// `check`: the daemon's own conditions on a new file (settings that need a daemon flag); an error
// refuses the file like a syntax error.
ReloadOutcome reload_connector_file(const std::string& path, const NodeIdentity& node, TablePublisher* publisher,
                                    const std::function<Status(const Config&)>& check = {});

}  // namespace ringmail::routing
