// Connector-file loader (see config_loader.h). toml++ throws on syntax errors; that exception is
// caught here and turned into a "FILE:LINE: reason" entry, so nothing escapes to callers. Every
// key is checked by one handler; unknown keys, bad values and impossible combinations are errors.
#include "routing/config_loader.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <charconv>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <toml++/toml.h>

#include "common/net.h"
#include "common/strings.h"
#include "routing/domain.h"

namespace ringmail::routing {
namespace {

uint32_t line_of(const toml::node& n) { return n.source().begin.line; }

// Returned by a helper that has already recorded its own, more precise errors.
constexpr const char* kAlreadyReported = "(already reported)";

// Parses "[192.0.2.7]:587", "[IPv6:2001:db8::1]", "relay.example.net:2525", "192.0.2.7".
Result<SmartHost> parse_smart_host(std::string_view text) {
  SmartHost host;
  std::string_view rest = trim(text);
  std::string_view port_text;
  if (rest.starts_with("[")) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return make_error("smart host '{}': missing ']'", text);
    std::string_view literal = rest.substr(1, close - 1);
    if (istarts_with(literal, "IPv6:")) literal.remove_prefix(5);
    std::string lit(literal);
    unsigned char buf[16];
    bool v4 = inet_pton(AF_INET, lit.c_str(), buf) == 1;
    bool v6 = !v4 && inet_pton(AF_INET6, lit.c_str(), buf) == 1;
    if (!v4 && !v6) return make_error("smart host '{}': '{}' is not an IP address", text, literal);
    host.host = lit;
    host.is_ip_literal = true;
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return make_error("smart host '{}': junk after ']'", text);
      port_text = rest.substr(1);
    }
  } else {
    size_t colon = rest.find(':');
    if (colon != std::string_view::npos) {
      if (rest.find(':', colon + 1) != std::string_view::npos)
        return make_error("smart host '{}': write IPv6 addresses as '[2001:db8::1]'", text);
      port_text = rest.substr(colon + 1);
      rest = rest.substr(0, colon);
    }
    std::string name(rest);
    unsigned char buf[4];
    if (inet_pton(AF_INET, name.c_str(), buf) == 1) {
      host.host = name;
      host.is_ip_literal = true;
    } else {
      auto normalized = normalize_domain(rest);
      if (!normalized) return make_error("smart host '{}': {}", text, normalized.error().message());
      host.host = std::move(*normalized);
    }
  }
  if (!port_text.empty() || rest.ends_with(":")) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
      return make_error("smart host '{}': bad port '{}'", text, port_text);
    host.port = static_cast<uint16_t>(port);
  }
  return host;
}

// Collects errors for one file and parses connector tables into Connectors.
class Loader {
 public:
  Loader(std::string_view file, ConnectorFiles files) : file_(file), files_(files) {}

  void load(std::string_view text, ConfigLoad* out) {
    toml::table root;
    try {
      root = toml::parse(text, file_);
    } catch (const toml::parse_error& e) {
      error(e.source().begin.line, std::string(e.description()));
      finish_errors(out);
      return;
    }
    auto config = std::make_shared<Config>();
    config->source = file_;
    for (auto&& [key, node] : root) {
      if (key.str() != "connector") {
        error(line_of(node), fmt::format("unknown top-level key '{}' (expected [[connector]] tables)",
                                         key.str()));
        continue;
      }
      const toml::array* list = node.as_array();
      if (!list || !node.is_array_of_tables()) {
        error(line_of(node), "'connector' must be written as [[connector]] tables");
        continue;
      }
      config->connectors.reserve(config->connectors.size() + list->size());
      for (const toml::node& element : *list) {
        // Kept even with errors so duplicate names are still reported; the config is then dropped.
        Connector c;
        parse_connector(*element.as_table(), &c);
        config->connectors.push_back(std::move(c));
      }
    }
    check_unique_names(*config);
    // Files named by connectors are opened last, once the text is otherwise valid, so a broken
    // file is reported for what it is and a secret is never read for a config that is refused.
    if (errors_.empty() && files_ == ConnectorFiles::kRead)
      for (Connector& c : config->connectors) check_connector_files(&c);
    if (errors_.empty()) {
      out->config = std::move(config);
    } else {
      finish_errors(out);
    }
  }

 private:
  // Each error is one line of printable text: a reason that quotes the file (a value with a
  // newline escape, or toml++ quoting the character it saw) gets its control octets escaped.
  void error(uint32_t line, std::string reason) {
    std::string clean;
    for (char c : reason) {
      auto u = static_cast<unsigned char>(c);
      if (c == '\n') clean += "\\n";
      else if (c == '\t') clean += "\\t";
      else if (u < 0x20 || u == 0x7f) clean += fmt::format("\\x{:02x}", u);
      else clean += c;
    }
    errors_.emplace_back(line, std::move(clean));
  }
  // toml++ tables iterate keys in name order, so errors are put back in line order here.
  void finish_errors(ConfigLoad* out) {
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [line, reason] : errors_)
      out->errors.push_back(fmt::format("{}:{}: {}", file_, line, reason));
  }
  void error_in(const Connector& c, uint32_t line, std::string_view reason) {
    if (c.name.empty()) {
      error(line, fmt::format("connector: {}", reason));
    } else {
      error(line, fmt::format("connector '{}': {}", c.name, reason));
    }
  }

  std::optional<std::string> want_string(const Connector& c, const toml::node& n,
                                         std::string_view key) {
    if (auto v = n.value_exact<std::string>()) return *v;
    error_in(c, line_of(n), fmt::format("'{}' must be a string", key));
    return std::nullopt;
  }
  std::optional<bool> want_bool(const Connector& c, const toml::node& n, std::string_view key) {
    if (auto v = n.value_exact<bool>()) return *v;
    error_in(c, line_of(n), fmt::format("'{}' must be true or false", key));
    return std::nullopt;
  }
  std::optional<int64_t> want_int(const Connector& c, const toml::node& n, std::string_view key,
                                  int64_t min, int64_t max) {
    auto v = n.value_exact<int64_t>();
    if (!v) {
      error_in(c, line_of(n), fmt::format("'{}' must be an integer", key));
      return std::nullopt;
    }
    if (*v < min || *v > max) {
      error_in(c, line_of(n), fmt::format("'{}' = {} is out of range {}-{}", key, *v, min, max));
      return std::nullopt;
    }
    return *v;
  }
  std::optional<std::vector<std::pair<std::string, uint32_t>>> want_string_list(
      const Connector& c, const toml::node& n, std::string_view key) {
    const toml::array* list = n.as_array();
    if (!list) {
      error_in(c, line_of(n), fmt::format("'{}' must be a list of strings", key));
      return std::nullopt;
    }
    std::vector<std::pair<std::string, uint32_t>> out;
    for (const toml::node& e : *list) {
      auto s = e.value_exact<std::string>();
      if (!s) {
        error_in(c, line_of(e), fmt::format("'{}' must be a list of strings", key));
        return std::nullopt;
      }
      out.emplace_back(*s, line_of(e));
    }
    return out;
  }

  void parse_address_spaces(Connector* c, const toml::node& n) {
    const toml::array* list = n.as_array();
    if (!list) {
      error_in(*c, line_of(n), "'address_spaces' must be a list");
      return;
    }
    c->address_spaces.reserve(c->address_spaces.size() + list->size());
    std::unordered_set<std::string> patterns;  // long lists only: to refuse a pattern twice
    for (const toml::node& e : *list) {
      const toml::value<std::string>* text = e.as_string();
      const toml::table* table = text ? nullptr : e.as_table();
      if (!text && !table) {
        error_in(*c, line_of(e), "an address space is a string or { domain = \"...\", cost = N }");
        continue;
      }
      Result<AddressSpace> space = text ? parse_address_space(text->get())  // a view, no copy
                                        : parse_address_space_table(*c, *table);
      if (!space) {
        if (space.error().message() != kAlreadyReported)
          error_in(*c, line_of(e), space.error().message());
        continue;
      }
      space->line = line_of(e);
      if (listed_before(c->address_spaces, *space, &patterns)) {
        error_in(*c, line_of(e), fmt::format("address space '{}' is listed twice", space->pattern()));
      }
      c->address_spaces.push_back(std::move(*space));
    }
  }

  // Whether `space` repeats a pattern of `earlier`. Connectors usually list a few spaces, so a
  // linear scan (no allocation) serves; past kScanLimit the patterns go into `seen` as well.
  static bool listed_before(const std::vector<AddressSpace>& earlier, const AddressSpace& space,
                            std::unordered_set<std::string>* seen) {
    constexpr size_t kScanLimit = 32;
    if (earlier.size() < kScanLimit) {
      for (const AddressSpace& s : earlier)
        if (s.kind == space.kind && s.domain == space.domain) return true;
      return false;
    }
    if (seen->empty())
      for (const AddressSpace& s : earlier) seen->insert(s.pattern());
    return !seen->insert(space.pattern()).second;
  }

  Result<AddressSpace> parse_address_space_table(const Connector& c, const toml::table& t) {
    std::optional<std::string> domain;
    int64_t cost = 1;
    bool ok = true;
    for (auto&& [key, node] : t) {
      if (key.str() == "domain") {
        domain = want_string(c, node, "domain");
        ok = ok && domain.has_value();
      } else if (key.str() == "cost") {
        auto v = node.value_exact<int64_t>();
        if (!v) {
          error_in(c, line_of(node), "'cost' must be an integer");
          ok = false;
        } else {
          cost = *v;
        }
      } else if (key.str() == "type") {
        auto type = want_string(c, node, "type");
        if (type && !iequals(*type, "SMTP")) {
          error_in(c, line_of(node),
                   fmt::format("address space type '{}' is not supported (only SMTP)", *type));
          ok = false;
        }
      } else {
        error_in(c, line_of(node), fmt::format("unknown key '{}' in an address space", key.str()));
        ok = false;
      }
    }
    if (!ok) return Error(kAlreadyReported);
    if (!domain) return make_error("address space table needs 'domain'");
    return make_address_space(*domain, cost);
  }

  void parse_auth(Connector* c, const toml::node& n) {
    const toml::table* t = n.as_table();
    if (!t) {
      error_in(*c, line_of(n), "'auth' must be a table { mechanism, username, password_file }");
      return;
    }
    SmartHostAuth auth;
    auth.line = line_of(n);
    bool ok = true;
    for (auto&& [key, node] : *t) {
      std::string_view k = key.str();
      std::optional<std::string> v;
      if (k == "mechanism" || k == "username" || k == "password_file") {
        v = want_string(*c, node, k);
        if (!v) {
          ok = false;
          continue;
        }
      } else {
        error_in(*c, line_of(node), fmt::format("unknown key '{}' in auth", k));
        ok = false;
        continue;
      }
      if (k == "mechanism") {
        if (!iequals(*v, "PLAIN") && !iequals(*v, "LOGIN")) {
          error_in(*c, line_of(node),
                   fmt::format("auth mechanism '{}' is not supported (PLAIN or LOGIN)", *v));
          ok = false;
        }
        auth.mechanism = iequals(*v, "PLAIN") ? "PLAIN" : "LOGIN";
      } else if (k == "username") {
        auth.username = *v;
      } else {
        auth.password_file = *v;
      }
    }
    if (!ok) return;
    if (auth.mechanism.empty() || auth.username.empty() || auth.password_file.empty()) {
      error_in(*c, line_of(n), "auth needs mechanism, username and password_file");
      return;
    }
    c->auth = std::move(auth);
  }

  void parse_size_key(Connector* c, const toml::node& n) {
    if (auto v = n.value_exact<int64_t>()) {
      if (*v < 1) {
        error_in(*c, line_of(n), "'max_message_size' must be positive (or \"unlimited\")");
      } else {
        c->max_message_size = static_cast<uint64_t>(*v);
      }
      return;
    }
    if (auto s = n.value_exact<std::string>()) {
      auto size = parse_size(*s);
      if (!size) {
        error_in(*c, line_of(n), fmt::format("'max_message_size': {}", size.error().message()));
      } else {
        c->max_message_size = *size;
      }
      return;
    }
    error_in(*c, line_of(n), "'max_message_size' must be bytes or a string such as \"35MB\"");
  }

  // A duration: seconds as an integer, or "30s" / "5m" / "1h"; 1 s to 1 day.
  std::optional<std::chrono::seconds> want_duration(const Connector& c, const toml::node& n, std::string_view key,
                                                    int64_t min_s = 1, int64_t max_s = 86400) {
    Result<std::chrono::seconds> d = make_error("unset");
    if (auto v = n.value_exact<int64_t>()) {
      d = std::chrono::seconds(*v);
    } else if (auto s = n.value_exact<std::string>()) {
      d = parse_duration(*s);
    } else {
      d = make_error("must be seconds or a string such as \"30s\"");
    }
    auto span = [](int64_t s) {
      return s >= 86400 && s % 86400 == 0 ? fmt::format("{} day{}", s / 86400, s == 86400 ? "" : "s") : fmt::format("{} s", s);
    };
    if (d && (d->count() < min_s || d->count() > max_s))
      d = make_error("{} s is out of range {} - {}", d->count(), span(min_s), span(max_s));
    if (!d) {
      error_in(c, line_of(n), fmt::format("'{}': {}", key, d.error().message()));
      return std::nullopt;
    }
    return *d;
  }

  void parse_timeout_key(Connector* c, const toml::node& n) {
    if (auto d = want_duration(*c, n, "connection_idle_timeout")) c->connection_idle_timeout = *d;
  }

  // timeouts = { connect = "30s", greeting = "5m", ... }: any subset; unknown names are errors.
  void parse_timeouts(Connector* c, const toml::node& n) {
    const toml::table* t = n.as_table();
    if (!t) {
      error_in(*c, line_of(n), "'timeouts' must be a table such as { connect = \"30s\", final_dot = \"10m\" }");
      return;
    }
    struct Field {
      std::string_view name;
      std::chrono::seconds ConnectorTimeouts::*member;
    };
    static constexpr Field kFields[] = {
        {"connect", &ConnectorTimeouts::connect},       {"greeting", &ConnectorTimeouts::greeting},
        {"helo", &ConnectorTimeouts::helo},             {"mail", &ConnectorTimeouts::mail},
        {"rcpt", &ConnectorTimeouts::rcpt},             {"data_init", &ConnectorTimeouts::data_init},
        {"data_block", &ConnectorTimeouts::data_block}, {"final_dot", &ConnectorTimeouts::final_dot},
        {"quit", &ConnectorTimeouts::quit},
    };
    for (const auto& [key, value] : *t) {
      const Field* f = nullptr;
      for (const auto& candidate : kFields)
        if (candidate.name == key.str()) f = &candidate;
      if (!f) {
        error_in(*c, line_of(value),
                 fmt::format("unknown timeout '{}' (connect, greeting, helo, mail, rcpt, data_init, data_block, "
                             "final_dot, quit)",
                             key.str()));
        continue;
      }
      if (auto d = want_duration(*c, value, fmt::format("timeouts.{}", key.str()))) c->timeouts.*(f->member) = *d;
    }
  }

  // Parses one [[connector]] table, reporting every problem.
  void parse_connector(const toml::table& t, Connector* c) {
    c->line = t.source().begin.line;
    if (const toml::node* n = t.get("name")) {
      if (auto name = want_string(*c, *n, "name")) {
        bool printable = !name->empty() && name->size() <= 64;
        for (char ch : *name) printable = printable && ch >= 0x20 && ch < 0x7f;
        if (!printable) {
          error(line_of(*n), "connector name must be 1-64 printable ASCII characters");
        } else {
          c->name = *name;
        }
      }
    } else {
      error(c->line, "connector has no 'name'");
    }
    std::optional<bool> dns_routing;
    for (auto&& [key, node] : t) {
      std::string_view k = key.str();
      if (k == "name") {
        continue;
      } else if (k == "enabled") {
        if (auto v = want_bool(*c, node, k)) c->enabled = *v;
      } else if (k == "address_spaces") {
        parse_address_spaces(c, node);
      } else if (k == "dns_routing") {
        dns_routing = want_bool(*c, node, k);
      } else if (k == "smart_hosts") {
        if (auto list = want_string_list(*c, node, k)) {
          for (auto& [text, line] : *list) {
            auto host = parse_smart_host(text);
            if (!host) {
              error_in(*c, line, host.error().message());
            } else {
              c->smart_hosts.push_back(std::move(*host));
            }
          }
          if (list->empty()) error_in(*c, line_of(node), "'smart_hosts' is empty");
        }
      } else if (k == "port") {
        if (auto v = want_int(*c, node, k, 1, 65535)) c->port = static_cast<uint16_t>(*v);
      } else if (k == "fqdn") {
        if (auto v = want_string(*c, node, k)) {
          auto fqdn = normalize_domain(*v);
          if (!fqdn) {
            error_in(*c, line_of(node), fmt::format("fqdn '{}': {}", *v, fqdn.error().message()));
          } else {
            c->fqdn = *fqdn;
          }
        }
      } else if (k == "source_addresses") {
        if (auto list = want_string_list(*c, node, k)) {
          for (auto& [text, line] : *list) {
            auto addr = SocketAddress::parse(text, 0);
            if (!addr) {
              error_in(*c, line, fmt::format("source address '{}' is not an IP address", text));
            } else {
              c->source_addresses.push_back(addr->host());
            }
          }
        }
      } else if (k == "nodes") {
        if (auto list = want_string_list(*c, node, k)) {
          for (auto& [text, line] : *list) {
            if (text.empty()) {
              error_in(*c, line, "empty node name");
            } else {
              c->nodes.push_back(text);
            }
          }
        }
      } else if (k == "max_message_size") {
        parse_size_key(c, node);
      } else if (k == "tls") {
        if (auto v = want_string(*c, node, k)) {
          if (*v == "none") c->tls = TlsPolicy::kNone;
          else if (*v == "opportunistic") c->tls = TlsPolicy::kOpportunistic;
          else if (*v == "required") c->tls = TlsPolicy::kRequired;
          else if (*v == "verify") c->tls = TlsPolicy::kVerify;
          else
            error_in(*c, line_of(node),
                     fmt::format("tls '{}' is not one of none, opportunistic, required, verify", *v));
        }
      } else if (k == "tls_domain") {
        if (auto v = want_string(*c, node, k)) {
          auto d = normalize_domain(*v);
          if (!d) {
            error_in(*c, line_of(node), fmt::format("tls_domain '{}': {}", *v, d.error().message()));
          } else {
            c->tls_domain = *d;
          }
        }
      } else if (k == "tls_ca_file") {
        if (auto v = want_string(*c, node, k)) {
          if (v->empty()) error_in(*c, line_of(node), "tls_ca_file is empty");
          else c->tls_ca_file = *v;
        }
      } else if (k == "auth") {
        parse_auth(c, node);
      } else if (k == "auth_file") {
        if (auto v = want_string(*c, node, k)) {
          if (v->empty()) {
            error_in(*c, line_of(node), "auth_file is empty");
          } else {
            SmartHostAuth auth;
            auth.password_file = *v;  // "username:password" inside; read by check_connector_files
            auth.line = line_of(node);
            c->auth = std::move(auth);
          }
        }
      } else if (k == "auth_allow_plaintext") {
        if (auto v = want_bool(*c, node, k)) c->auth_allow_plaintext = *v;
      } else if (k == "max_connections_per_destination") {
        if (auto v = want_int(*c, node, k, 1, 10000)) c->max_connections_per_destination = *v;
      } else if (k == "max_messages_per_connection") {
        if (auto v = want_int(*c, node, k, 1, 100000)) c->max_messages_per_connection = *v;
      } else if (k == "max_recipients_per_transaction") {
        if (auto v = want_int(*c, node, k, 1, 1000)) c->max_recipients_per_transaction = *v;
      } else if (k == "connection_idle_timeout") {
        parse_timeout_key(c, node);
      } else if (k == "retry_min") {
        c->retry.min = want_duration(*c, node, k);
      } else if (k == "retry_max") {
        c->retry.max = want_duration(*c, node, k, 1, 86400 * 7);
      } else if (k == "message_expiration") {
        c->retry.expiration = want_duration(*c, node, k, 1, 86400 * 90);
      } else if (k == "delay_notice") {
        c->retry.delay_notice = want_duration(*c, node, k, 0, 86400 * 90);
      } else if (k == "timeouts") {
        parse_timeouts(c, node);
      } else if (k == "protocol_log") {
        if (auto v = want_bool(*c, node, k)) c->protocol_log = *v;
      } else {
        error_in(*c, line_of(node), fmt::format("unknown key '{}'", k));
      }
    }
    check_combinations(*c, t, dns_routing);
  }

  // Combinations that cannot work, each refused with the reason.
  void check_combinations(const Connector& c, const toml::table& t, std::optional<bool> dns) {
    auto line = [&](std::string_view key) {
      const toml::node* n = t.get(key);
      return n ? line_of(*n) : c.line;
    };
    if (c.address_spaces.empty() && !t.get("address_spaces"))
      error_in(c, c.line, "no 'address_spaces': the connector would never be selected");
    else if (c.address_spaces.empty() && t.get("address_spaces")->as_array() &&
             t.get("address_spaces")->as_array()->empty())
      error_in(c, line("address_spaces"), "'address_spaces' is empty");
    if (c.retry.min && c.retry.max && *c.retry.max < *c.retry.min)
      error_in(c, line("retry_max"), "'retry_max' is shorter than 'retry_min'");
    if (dns.value_or(false) && t.get("smart_hosts"))
      error_in(c, line("dns_routing"),
               "dns_routing = true and smart_hosts exclude each other: route by MX or through "
               "smart hosts");
    if (dns.has_value() && !*dns && !t.get("smart_hosts"))
      error_in(c, line("dns_routing"), "dns_routing = false needs smart_hosts");
    std::string_view auth_key = t.get("auth_file") ? "auth_file" : "auth";
    if (t.get("auth") && t.get("auth_file"))
      error_in(c, line("auth_file"), "auth and auth_file exclude each other: give the credentials once");
    if (t.get(auth_key) && !t.get("smart_hosts"))
      error_in(c, line(auth_key), fmt::format("{} is only used with smart_hosts", auth_key));
    if (c.auth && !c.auth_allow_plaintext && (c.tls == TlsPolicy::kNone || c.tls == TlsPolicy::kOpportunistic))
      error_in(c, line(auth_key),
               fmt::format("{} needs tls = \"required\" or \"verify\" (tls is \"{}\"): a password "
                           "is never sent in clear unless auth_allow_plaintext = true",
                           auth_key, tls_policy_name(c.tls)));
    if (t.get("auth_allow_plaintext") && !c.auth)
      error_in(c, line("auth_allow_plaintext"), "auth_allow_plaintext without auth or auth_file");
    if (!c.tls_ca_file.empty() && c.tls != TlsPolicy::kVerify)
      error_in(c, line("tls_ca_file"), "tls_ca_file only applies with tls = \"verify\"");
    if (!c.tls_domain.empty() && c.tls != TlsPolicy::kVerify)
      error_in(c, line("tls_domain"), "tls_domain only applies with tls = \"verify\"");
    if (c.tls == TlsPolicy::kVerify && c.tls_domain.empty()) {
      for (const SmartHost& h : c.smart_hosts) {
        if (h.is_ip_literal) {
          error_in(c, line("tls"),
                   fmt::format("tls = \"verify\" with the IP smart host '{}' needs tls_domain",
                               h.host));
          break;
        }
      }
    }
  }

  // The CA file must be readable; the credentials file must be readable by us and by nobody else
  // (no group or other permission bits), and hold what its key promises.
  void check_connector_files(Connector* c) {
    if (!c->tls_ca_file.empty() && ::access(c->tls_ca_file.c_str(), R_OK) != 0)
      error_in(*c, c->line, fmt::format("tls_ca_file {}: {}", c->tls_ca_file, std::strerror(errno)));
    if (!c->auth) return;
    SmartHostAuth& a = *c->auth;
    const bool user_and_password = a.username.empty();  // auth_file: "username:password"
    std::string_view key = user_and_password ? "auth_file" : "auth password_file";
    struct stat st {};
    if (::stat(a.password_file.c_str(), &st) != 0) {
      error_in(*c, a.line, fmt::format("{} {}: {}", key, a.password_file, std::strerror(errno)));
      return;
    }
    if (!S_ISREG(st.st_mode)) {
      error_in(*c, a.line, fmt::format("{} {} is not a regular file", key, a.password_file));
      return;
    }
    if ((st.st_mode & 077) != 0) {
      error_in(*c, a.line,
               fmt::format("{} {} is accessible by group or others (mode {:04o}): it holds a password; "
                           "chmod 600 it",
                           key, a.password_file, st.st_mode & 07777));
      return;
    }
    std::ifstream in(a.password_file);
    if (!in) {
      error_in(*c, a.line, fmt::format("{} {}: {}", key, a.password_file, std::strerror(errno)));
      return;
    }
    std::string line;
    bool found = false;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (trim(line).empty() || trim(line).front() == '#') continue;
      found = true;
      break;
    }
    if (!found) {
      error_in(*c, a.line, fmt::format("{} {} holds no credentials", key, a.password_file));
      return;
    }
    if (user_and_password) {
      size_t colon = line.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == line.size()) {
        // The line itself is never quoted: it may be a password.
        error_in(*c, a.line, fmt::format("auth_file {}: the first line must be username:password", a.password_file));
        return;
      }
      a.username = line.substr(0, colon);
      a.password = line.substr(colon + 1);
    } else {
      a.password = line;
    }
    std::fill(line.begin(), line.end(), '\0');
  }

  void check_unique_names(const Config& config) {
    std::unordered_map<std::string, const Connector*> first;  // lower-cased name → first use
    first.reserve(config.connectors.size());
    for (const Connector& c : config.connectors) {
      if (c.name.empty()) continue;
      auto [it, inserted] = first.try_emplace(to_lower_ascii(c.name), &c);
      if (!inserted) {
        error(c.line, fmt::format("duplicate connector name '{}' (first at line {})", c.name,
                                  it->second->line));
      }
    }
  }

  std::string file_;                // FILE part of messages
  ConnectorFiles files_;            // open the files connectors name (credentials, CA)
  std::vector<std::pair<uint32_t, std::string>> errors_;  // (line, reason) as found
};

}  // namespace

std::string_view tls_policy_name(TlsPolicy p) {
  switch (p) {
    case TlsPolicy::kNone: return "none";
    case TlsPolicy::kOpportunistic: return "opportunistic";
    case TlsPolicy::kRequired: return "required";
    case TlsPolicy::kVerify: return "verify";
  }
  return "?";
}

ConfigLoad parse_connector_text(std::string_view text, std::string_view name_for_errors, ConnectorFiles files) {
  ConfigLoad out;
  Loader(name_for_errors, files).load(text, &out);
  return out;
}

ConfigLoad read_connector_file(const std::string& path, ConnectorFiles files) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ConfigLoad out;
    out.errors.push_back(fmt::format("{}:0: cannot open the connector file", path));
    return out;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_connector_text(buffer.str(), path, files);
}

static Result<std::shared_ptr<const Config>> to_result(ConfigLoad load) {
  if (load.config) return load.config;
  std::string joined;
  for (const std::string& e : load.errors) {
    if (!joined.empty()) joined += '\n';
    joined += e;
  }
  return Error(std::move(joined));
}

Result<std::shared_ptr<const Config>> load_connector_file(const std::string& path) {
  return to_result(read_connector_file(path, ConnectorFiles::kRead));
}

Result<std::shared_ptr<const Config>> load_connector_text(std::string_view text,
                                                          std::string_view name_for_errors) {
  return to_result(parse_connector_text(text, name_for_errors, ConnectorFiles::kRead));
}

Result<uint64_t> parse_size(std::string_view text) {
  std::string_view s = trim(text);
  if (iequals(s, "unlimited")) return uint64_t{0};
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), number);
  if (ec != std::errc() || end == s.data()) return make_error("bad size '{}'", text);
  std::string_view unit = trim(std::string_view(end, s.data() + s.size() - end));
  uint64_t scale = 0;
  if (unit.empty() || iequals(unit, "B")) scale = 1;
  else if (iequals(unit, "KB") || iequals(unit, "KiB") || iequals(unit, "K")) scale = 1ull << 10;
  else if (iequals(unit, "MB") || iequals(unit, "MiB") || iequals(unit, "M")) scale = 1ull << 20;
  else if (iequals(unit, "GB") || iequals(unit, "GiB") || iequals(unit, "G")) scale = 1ull << 30;
  else return make_error("bad size unit '{}' in '{}' (B, KB, MB, GB)", unit, text);
  if (number == 0) return make_error("size '{}' is zero (write \"unlimited\")", text);
  if (number > (uint64_t{1} << 50) / scale) return make_error("size '{}' is too large", text);
  return number * scale;
}

Result<std::chrono::seconds> parse_duration(std::string_view text) {
  std::string_view s = trim(text);
  int64_t number = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), number);
  if (ec != std::errc() || end == s.data() || number < 0)
    return make_error("bad duration '{}'", text);
  std::string_view unit = trim(std::string_view(end, s.data() + s.size() - end));
  int64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1;
  else if (unit == "m" || unit == "min") scale = 60;
  else if (unit == "h") scale = 3600;
  else if (unit == "d") scale = 86400;
  else return make_error("bad duration unit '{}' in '{}' (s, m, h, d)", unit, text);
  if (number > 86400 * 365) return make_error("duration '{}' is too long", text);
  return std::chrono::seconds(number * scale);
}

}  // namespace ringmail::routing
