// ringmail-route: the route explainer and connector-file checker for operators.
//   ringmail-route --config FILE ADDRESS... [--size BYTES] [--node NAME] [--node-address IP]...
//   ringmail-route --config FILE --check
//   ringmail-route --config FILE --mx [--dns-server IP[:PORT]]... [--ip-preference P] ADDRESS...
// Prints, per address, the chosen connector, matched space and cost, where it routes, and every
// runner-up with the rule that beat it. With --mx, DNS-routed addresses also get the live MX
// answer (hosts, addresses, TTLs) and one attempt's address order. Exit 1 when the file is
// invalid, 2 on usage errors.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "routing/config_loader.h"
#include "routing/dns/ares_transport.h"
#include "routing/dns/mx_resolver.h"
#include "routing/dns/poll_dns_loop.h"
#include "routing/table.h"

namespace rr = ringmail::routing;
namespace rd = ringmail::routing::dns;

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
  if (c.auth)
    out += fmt::format(", auth {} as {}", c.auth->mechanism.empty() ? "PLAIN or LOGIN" : c.auth->mechanism, c.auth->username);
  return out;
}

// "Julia <julia@Marketing.Contoso.com>" or "julia@x" or a bare domain → the domain part.
std::string_view domain_of(std::string_view address) {
  if (size_t lt = address.rfind('<'); lt != std::string_view::npos) address.remove_prefix(lt + 1);
  if (!address.empty() && address.back() == '>') address.remove_suffix(1);
  if (size_t at = address.rfind('@'); at != std::string_view::npos) address.remove_prefix(at + 1);
  return address;
}

// The live MX view: asks the DNS (no cache carried between runs) and prints what delivery would use.
class MxView {
 public:
  static ringmail::Result<std::unique_ptr<MxView>> create(const rd::DnsSettings& settings) {
    std::unique_ptr<MxView> v(new MxView(settings));
    auto t = rd::AresTransport::create(v->loop_, settings);
    if (!t) return t.error();
    v->transport_ = std::move(*t);
    v->resolver_ = std::make_unique<rd::MxResolver>(*v->transport_, v->loop_, ringmail::SystemClock::instance(),
                                                    settings);
    v->loop_.attach(v->resolver_.get());
    return v;
  }
  ~MxView() { resolver_.reset(); }

  void show(std::string_view domain, uint16_t port) {
    rd::MxResolver::AnswerPtr got = resolver_->resolve(domain, [&](rd::MxResolver::AnswerPtr a) { got = a; });
    loop_.run_until([&] { return got != nullptr; }, settings_.lookup_deadline + std::chrono::seconds(1));
    if (!got) {
      fmt::print("  MX:         no answer\n");
      return;
    }
    const rd::MxAnswer& a = *got;
    fmt::print("  MX answer:  {} {} {}: {}\n", rd::outcome_name(a.outcome), a.smtp_code, a.enhanced_status, a.text);
    if (a.canonical_domain != a.domain) fmt::print("  canonical:  {}\n", a.canonical_domain);
    for (const rd::MxHost& h : a.hosts) {
      fmt::print("    MX {:<5} {} (TTL {}){}\n", h.preference, h.name, h.ttl, a.implicit_mx ? " implicit MX" : "");
      for (const rd::HostAddress& x : h.addresses) fmt::print("             {} (TTL {})\n", x.address.host(), x.ttl);
    }
    for (const std::string& s : a.skipped) fmt::print("    skipped   {}\n", s);
    if (!a.ok()) return;
    std::random_device seed;
    std::mt19937_64 rng(seed());
    std::string order;
    for (const rd::AttemptTarget& t : rd::attempt_order(a, rng, settings_.address_cap, port))
      order += " " + t.address.to_string();
    fmt::print("  attempt:   {} (equal preferences shuffled, cap {}); answer cached {} s\n", order,
               settings_.address_cap, a.ttl);
  }

 private:
  explicit MxView(const rd::DnsSettings& s) : settings_(s) {}
  rd::DnsSettings settings_;
  rd::PollDnsLoop loop_;
  std::unique_ptr<rd::AresTransport> transport_;
  std::unique_ptr<rd::MxResolver> resolver_;
};

void explain_address(const rr::Table& table, const std::string& address, uint64_t size, MxView* mx) {
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
    if (mx != nullptr && !s.connector->uses_smart_hosts()) mx->show(ex.domain, s.connector->port);
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
  bool show_mx = false;
  std::vector<std::string> dns_servers;
  std::string ip_preference = "ipv4";
  rd::DnsSettings dns;
  app.add_flag("--mx", show_mx, "resolve DNS-routed destinations now: MX hosts, addresses, TTLs");
  app.add_option("--dns-server", dns_servers, "DNS server IP[:PORT] (repeatable; default /etc/resolv.conf)")
      ->allow_extra_args(false);
  app.add_option("--ip-preference", ip_preference, "ipv4 | ipv6 | any: address family tried first");
  app.add_option("--max-mx-addresses", dns.address_cap, "addresses per delivery attempt (default 5, at least 2)");
  CLI11_PARSE(app, argc, argv);
  for (const std::string& text : dns_servers) {
    auto server = rd::parse_dns_server(text);
    if (!server) {
      fmt::print(stderr, "ringmail-route: {}\n", server.error().message());
      return 2;
    }
    dns.servers.push_back(*server);
  }
  auto preference = rd::parse_ip_preference(ip_preference);
  if (!preference) {
    fmt::print(stderr, "ringmail-route: {}\n", preference.error().message());
    return 2;
  }
  dns.ip_preference = *preference;

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
  std::unique_ptr<MxView> mx;
  if (show_mx) {
    auto view = MxView::create(dns);
    if (!view) {
      fmt::print(stderr, "ringmail-route: {}\n", view.error().message());
      return 1;
    }
    mx = std::move(*view);
  }
  for (const std::string& a : addresses) explain_address(**table, a, *size, mx.get());
  return 0;
}
