// Fuzz target: the connector file (routing/config_loader.h) and the routing table built from it
// (routing/table.h). Broken TOML or broken connectors must give errors, never a crash: a load
// either yields a Config and no errors, or errors ("fuzz.toml:LINE: reason", one line each) and no
// Config. A table built from a loaded Config must pick, for any domain, the same connector through
// select() (the lock-free fast path) as through explain() (the path `ringmail-route` shows).
//
// Input: 1 length byte and that many bytes of a recipient domain, 1 byte of message size
// (in KiB), then the connector file text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "routing/config_loader.h"
#include "routing/table.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_input.h"

namespace routing = ringmail::routing;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ringmail::fuzz::Input in(data, size);
  std::string domain(in.piece());
  uint64_t message_size = uint64_t{in.byte()} * 1024;
  std::string_view text = in.rest();

  routing::ConfigLoad load = routing::parse_connector_text(text, "fuzz.toml");
  FUZZ_CHECK((load.config != nullptr) == load.errors.empty());
  for (const auto& e : load.errors) {
    FUZZ_CHECK(e.rfind("fuzz.toml:", 0) == 0);
    FUZZ_CHECK(e.find('\n') == std::string::npos);
  }
  if (!load.config) return 0;
  auto table = routing::Table::build(load.config, routing::NodeIdentity{"n1", {"127.0.0.1"}});
  if (!table.ok()) return 0;
  for (std::string_view d : {std::string_view(domain), std::string_view("example.com"), std::string_view("a.b.example.org")}) {
    routing::Selection sel;
    const routing::Connector* c = (*table)->select(d, message_size, &sel);
    routing::Explanation ex = (*table)->explain(d, message_size);
    FUZZ_CHECK(ex.selection.connector == c);
    FUZZ_CHECK(c == sel.connector);
    if (!c) FUZZ_CHECK(ex.selection.unreachable == sel.unreachable);
  }
  return 0;
}
