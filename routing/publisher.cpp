// Table publication and reload (see publisher.h). The ordering argument: publish() stores the
// table before it increments the version (release), and a reader loads the table only after
// seeing a new version (acquire, then the mutex), so a reader never holds a table older than
// the version it recorded. Old tables are freed by whichever thread drops the last shared_ptr.
#include "routing/publisher.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace ringmail::routing {

TablePublisher::TablePublisher(std::shared_ptr<const Table> initial) : table_(std::move(initial)) {}

std::shared_ptr<const Table> TablePublisher::current() const {
  std::lock_guard<std::mutex> lock(table_mutex_);
  return table_;
}

void TablePublisher::publish(std::shared_ptr<const Table> next) {
  std::vector<std::shared_ptr<const Table>> unused;
  {
    std::lock_guard<std::mutex> lock(table_mutex_);
    std::shared_ptr<const Table> old = std::exchange(table_, std::move(next));
    version_.fetch_add(1, std::memory_order_release);
    if (old) retired_.push_back(std::move(old));
    take_unused_locked(&unused);
  }
  // `unused` is destroyed here, outside the mutex: freeing a 100k-space table takes
  // milliseconds, and a worker's refresh() must not wait for it.
}

// A retired table with use_count() == 1 is held only by this list: readers get new references
// only from table_, which no longer points to it, so nobody can take one again. Freeing it on
// the config thread keeps the cost of destroying a large table off the workers. The final reset
// synchronises with the readers' releases through the reference count itself.
void TablePublisher::take_unused_locked(std::vector<std::shared_ptr<const Table>>* unused) {
  auto still_used = std::partition(retired_.begin(), retired_.end(),
                                   [](const auto& t) { return t.use_count() > 1; });
  std::move(still_used, retired_.end(), std::back_inserter(*unused));
  retired_.erase(still_used, retired_.end());
}

size_t TablePublisher::reclaim() {
  std::vector<std::shared_ptr<const Table>> unused;  // declared first: destroyed after unlock
  std::lock_guard<std::mutex> lock(table_mutex_);
  take_unused_locked(&unused);
  return retired_.size();
}

TableReader::TableReader(const TablePublisher& publisher) : publisher_(&publisher) { refresh(); }

ReloadOutcome reload_connector_file(const std::string& path, const NodeIdentity& node, TablePublisher* publisher,
                                    const std::function<Status(const Config&)>& check) {
  ReloadOutcome outcome;
  ConfigLoad load = read_connector_file(path, ConnectorFiles::kRead);  // credentials files too, as at start-up
  Status checked;
  if (!load.config) {
    outcome.errors = std::move(load.errors);
  } else if (check && !(checked = check(*load.config))) {
    outcome.errors.push_back(checked.error().message());
  } else if (auto table = Table::build(load.config, node); !table) {
    outcome.errors.push_back(table.error().message());
  } else {
    publisher->publish(std::move(*table));
    outcome.published = true;
  }
  outcome.version = publisher->version();
  return outcome;
}

}  // namespace ringmail::routing
