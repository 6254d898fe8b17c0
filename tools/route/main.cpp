// ringmail-route: the route explainer and connector-file checker for operators.
//   ringmail-route --config FILE ADDRESS... [--size BYTES] [--node NAME] [--node-address IP]...
//   ringmail-route --config FILE --check
// Prints, per address, the chosen connector, matched space and cost, where it routes, and every
// runner-up with the rule that beat it. Exit 1 when the file is invalid, 2 on usage errors.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "routing/config_loader.h"
#include "routing/table.h"

namespace rr = ringmail::routing;

namespace {

std::string_view level_name(rr::MatchLevel level) {
  switch (level) {
    case rr::MatchLevel::kExact: return "exact";
    case rr::MatchLevel::kWildcard: return "wildcard";
    case rr::MatchLevel::kAll: return "catch-all";
    case rr::MatchLevel::kNone: return "none";
  }
  return "?";
}

std::string describe_route(const rr::Connector& c, std::string_view domain) {
  std::string out;
  if (!c.uses_smart_hosts()) {
    out = fmt::format("DNS MX of {}, port {}", domain, c.port);
  } else {
    out = "smart hosts";
    for (const rr::SmartHost& h : c.smart_hosts) {
      std::string host = h.is_ip_literal ? fmt::format("[{}]", h.host) : h.host;
      out += fmt::format(" {}:{}", host, h.port ? h.port : c.port);
    }
  }
  out += fmt::format(", tls {}", rr::tls_policy_name(c.tls));
  if (!c.tls_domain.empty()) out += fmt::format(" ({})", c.tls_domain);
  if (c.auth) out += fmt::format(", auth {} as {}", c.auth->mechanism, c.auth->username);
  return out;
}

// "Julia <julia@Marketing.Contoso.com>" or "julia@x" or a bare domain → the domain part.
std::string_view domain_of(std::string_view address) {
  if (size_t lt = address.rfind('<'); lt != std::string_view::npos) address.remove_prefix(lt + 1);
  if (!address.empty() && address.back() == '>') address.remove_suffix(1);
  if (size_t at = address.rfind('@'); at != std::string_view::npos) address.remove_prefix(at + 1);
  return address;
}

void explain_address(const rr::Table& table, const std::string& address, uint64_t size) {
  rr::Explanation ex = table.explain(domain_of(address), size);
  fmt::print("{}\n  domain:     {}\n", address, ex.domain);
  const rr::Selection& s = ex.selection;
  if (s.connector == nullptr) {
    fmt::print("  result:     unreachable: {} (held in the Unreachable queue)\n",
               rr::unreachable_reason(s.unreachable));
  } else {
    fmt::print("  connector:  {}\n", s.connector->name);
    fmt::print("  matched:    {} ({}), cost {}\n", s.space->pattern(), level_name(s.level),
               s.space->cost);
    fmt::print("  routes via: {}\n", describe_route(*s.connector, ex.domain));
  }
  if (ex.runners_up.empty()) {
    fmt::print("  runners-up: none\n");
  } else {
    fmt::print("  runners-up:\n");
    for (const rr::RunnerUp& r : ex.runners_up) {
      fmt::print("    {:<20} {:<24} cost {:<3} lost by {}\n", r.connector->name, r.space->pattern(),
                 r.space->cost, rr::loss_rule_text(r.rule));
    }
  }
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringmail-route: explain which send connector each recipient takes"};
  std::string config_path;
  std::vector<std::string> addresses;
  std::string size_text;
  rr::NodeIdentity node{host_name(), {}};
  bool check_only = false;
  app.add_option("--config", config_path, "connector file (TOML)")->required();
  app.add_option("addresses", addresses, "recipient addresses or domains");
  app.add_option("--size", size_text, "message size: bytes or 35MB (default 0)");
  app.add_option("--node", node.name, "this node's name (default: host name)");
  app.add_option("--node-address", node.addresses, "this node's IP addresses (locality tie-break)");
  app.add_flag("--check", check_only, "validate the file and print every error");
  CLI11_PARSE(app, argc, argv);

  auto size = (size_text.empty() || size_text == "0") ? ringmail::Result<uint64_t>(uint64_t{0})
                                                      : rr::parse_size(size_text);
  if (!size) {
    fmt::print(stderr, "ringmail-route: --size: {}\n", size.error().message());
    return 2;
  }
  if (!check_only && addresses.empty()) {
    fmt::print(stderr, "ringmail-route: give at least one ADDRESS, or --check\n");
    return 2;
  }

  rr::ConfigLoad load = rr::read_connector_file(config_path);
  if (!load.config) {
    for (const std::string& e : load.errors) fmt::print(stderr, "{}\n", e);
    fmt::print(stderr, "ringmail-route: {} error(s); the file is invalid\n", load.errors.size());
    return 1;
  }
  auto table = rr::Table::build(load.config, node);
  if (!table) {
    fmt::print(stderr, "{}\n", table.error().message());
    return 1;
  }
  if (check_only) {
    fmt::print("{}: OK, {} connectors, {} address spaces\n", config_path,
               load.config->connectors.size(), (*table)->address_space_count());
  }
  for (const std::string& a : addresses) explain_address(**table, a, *size);
  return 0;
}
