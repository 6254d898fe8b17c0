// Flag parsing for the daemon (see options.h).
#include "engine/daemon/options.h"

#include <sched.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <thread>

#include "common/strings.h"

namespace ringmail::engine {

Result<uint64_t> parse_size(std::string_view text) {
  text = trim(text);
  uint64_t value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p == text.data()) return make_error("bad size '{}'", text);
  std::string unit = to_lower_ascii(trim(std::string_view(p, static_cast<size_t>(text.data() + text.size() - p))));
  uint64_t mult = 1;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib") mult = 1024;
  else if (unit == "m" || unit == "mb" || unit == "mib") mult = 1024 * 1024;
  else if (unit == "g" || unit == "gb" || unit == "gib") mult = 1024ull * 1024 * 1024;
  else return make_error("bad size '{}': unknown unit '{}' (use B, KB, MB or GB)", text, unit);
  if (value > UINT64_MAX / mult) return make_error("bad size '{}': too large", text);
  return value * mult;
}

Result<std::vector<int>> parse_cpu_list(std::string_view text) {
  std::vector<int> cpus;
  auto number = [&](std::string_view t, int* out) {
    t = trim(t);
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), *out);
    return ec == std::errc() && p == t.data() + t.size() && !t.empty() && *out >= 0 && *out < CPU_SETSIZE;
  };
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (comma != std::string_view::npos && text.empty()) return make_error("empty item at the end of the CPU list");
    size_t dash = item.find('-');
    int first = 0, last = 0;
    if (dash == std::string_view::npos) {
      if (!number(item, &first)) return make_error("bad CPU '{}' (a number from 0 to {})", trim(item), CPU_SETSIZE - 1);
      last = first;
    } else if (!number(item.substr(0, dash), &first) || !number(item.substr(dash + 1), &last) || last < first) {
      return make_error("bad CPU range '{}' (FIRST-LAST, e.g. 0-3)", trim(item));
    }
    for (int c = first; c <= last; ++c) {
      if (std::find(cpus.begin(), cpus.end(), c) != cpus.end()) return make_error("CPU {} is listed twice", c);
      cpus.push_back(c);
    }
  }
  if (cpus.empty()) return make_error("empty CPU list");
  return cpus;
}

Result<DaemonOptions> parse_daemon_options(int argc, char** argv, bool* should_exit, int* exit_code) {
  DaemonOptions o;
  *should_exit = false;
  *exit_code = 0;
  std::string max_size = "35MB";
  CLI::App app{"ringmail: a high-throughput outbound SMTP relay"};
  app.set_version_flag("--version", "ringmail 0.1.0");
  app.add_option("--listen", o.listen, "SMTP listen address host:port, repeatable (port 0 picks a free port)")
      ->capture_default_str();
  app.add_option("--hostname", o.hostname, "our host name in the greeting and Received: (default: the system's)");
  app.add_option("--spool", o.spool_dir, "spool directory (created if missing)")->capture_default_str();
  app.add_option("--spool-io", o.spool_io,
                 "how the spool commits: buffered (write + fdatasync; the page cache keeps the messages for "
                 "delivery) or direct (O_DIRECT writes with RWF_DSYNC, one per group commit: less CPU, but "
                 "delivery reads messages back from the device; falls back to buffered without direct I/O)")
      ->capture_default_str()
      ->check(CLI::IsMember({"direct", "buffered"}));
  app.add_option("--config", o.config_file, "send connector file (TOML); without it all mail is held");
  app.add_option("--protocol-log-dir", o.protocol_log_dir,
                 "directory (created if missing) for the SMTP protocol log of connectors with protocol_log = true");
  app.add_option("--tracking-log-dir", o.tracking_log_dir,
                 "directory (created if missing) for the message-tracking log: a JSON line per receive, reject, "
                 "deliver, defer, bounce, expiry, removal and DSN (default: none)");
  app.add_option("--log-max-age", o.log_max_age,
                 "days of tracking and protocol log files kept; older ones are removed when a new day begins "
                 "(0 = keep all)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 36500u));
  app.add_option("--node", o.node_name, "this node's name, matched against connectors' `nodes` (default: --hostname)");
  app.add_option("--node-address", o.node_addresses,
                 "an egress IP of this node, repeatable; connectors whose source_addresses include it win cost ties");
  app.add_option("--workers", o.workers, "worker threads, each with its own io_uring ring (0 = one per core)")
      ->capture_default_str();
  app.add_option("--worker-cpus", o.worker_cpus,
                 "pin worker threads to CPUs, e.g. 1 or 0-3 or 0,2: worker i runs on the i-th CPU listed "
                 "(wrapping around); default: the scheduler places them");
  app.add_option("--relay-networks", o.relay_networks,
                 "client networks allowed to relay, comma separated CIDRs; everyone else gets 554 5.7.1")
      ->capture_default_str();
  app.add_option("--max-recipients", o.max_recipients, "recipients per message (more get 452 4.5.3)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--max-message-size", max_size, "largest message accepted, e.g. 35MB (advertised in SIZE)")
      ->capture_default_str();
  app.add_option("--max-connections", o.max_connections, "concurrent inbound connections (beyond: 421)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--command-timeout", o.command_timeout, "seconds to wait for a command (RFC 5321: 300)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));
  app.add_option("--data-timeout", o.data_timeout, "seconds to wait for the next block of DATA (RFC 5321: 180)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));
  app.add_option("--shutdown-grace", o.shutdown_grace, "seconds busy sessions (inbound, and outbound transactions under way) may finish after SIGTERM")
      ->capture_default_str();
  app.add_flag("--hold", o.hold, "accept and queue mail but deliver nothing");
  app.add_option("--max-outbound", o.max_outbound, "outbound SMTP sessions across all workers")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--retry-min", o.retry_min, "seconds before the first retry of a deferred recipient (doubles)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));
  app.add_option("--retry-max", o.retry_max, "longest retry back-off, seconds")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u * 7));
  app.add_option("--admin", o.admin_listen,
                 "admin HTTP plane (JSON queue administration, /metrics) on ADDR:PORT, e.g. 127.0.0.1:8025; "
                 "loopback only unless --admin-allow-non-loopback");
  app.add_flag("--admin-allow-non-loopback", o.admin_any_address,
               "let --admin listen on a non-loopback address (it has no authentication: firewall it)");
  app.add_option("--dns-server", o.dns_servers,
                 "DNS server for MX lookups, IP[:PORT] (repeatable); default: the servers in /etc/resolv.conf");
  app.add_option("--ip-preference", o.ip_preference, "address family tried first at MX hosts: ipv4, ipv6 or any")
      ->capture_default_str();
  app.add_option("--dns-ttl-min", o.dns_ttl_min, "seconds: DNS answers are cached at least this long")
      ->capture_default_str()
      ->check(CLI::Range(0u, 86400u));
  app.add_option("--dns-ttl-max", o.dns_ttl_max, "seconds: DNS answers are cached at most this long")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u * 7));
  app.add_option("--dns-cache-size", o.dns_cache_size, "entries per DNS cache (least recently used evicted)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{16}, size_t{10'000'000}));
  app.add_option("--max-mx-addresses", o.mx_address_cap,
                 "addresses tried per delivery attempt across the MX hosts (at least 2 are always tried)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100}));
  app.add_option("--glitch-retries", o.glitch_retries, "first failures retried quickly (after --glitch-interval)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 15u));
  app.add_option("--glitch-interval", o.glitch_interval, "seconds before a glitch retry (at most --retry-min)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3600u));
  app.add_option("--message-expiration", o.message_expiration,
                 "seconds after arrival when undelivered recipients fail with a DSN (default 2 days)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u * 90));
  app.add_option("--delay-notice", o.delay_notice,
                 "seconds after arrival when the sender gets one delay DSN (default 4 h; 0 = never)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 86400u * 90));
  app.add_option("--ready-file", o.ready_file, "write the bound listen addresses here once ready (for scripts)");
  app.add_option("--log-level", o.log_level, "debug, info, warn or error")->capture_default_str();
  app.add_option("--tls-cert", o.tls_cert,
                 "PEM certificate chain for the listener; with --tls-key, STARTTLS is offered (checked at start)");
  app.add_option("--tls-key", o.tls_key, "PEM private key of --tls-cert");
  app.add_flag("--require-tls", o.require_tls, "refuse MAIL before STARTTLS (530 5.7.0); needs --tls-cert");
  app.add_option("--auth-file", o.auth_file,
                 "AUTH PLAIN/LOGIN credentials, one user:HASH line each (HASH from `openssl passwd -6`); the file "
                 "must not be group/other accessible; AUTH is offered only over TLS and lets clients relay");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *should_exit = true;
    *exit_code = app.exit(e);
    return o;
  }
  auto size = parse_size(max_size);
  if (!size) return make_error("--max-message-size: {}", size.error().message());
  o.max_message_size = *size;
  auto nets = NetworkList::parse(o.relay_networks);
  if (!nets) return make_error("--relay-networks: {}", nets.error().message());
  o.relay = std::move(*nets);
  if (o.workers == 0) o.workers = std::max(1u, std::thread::hardware_concurrency());
  if (o.workers > 256) return make_error("--workers: at most 256");
  if (!o.worker_cpus.empty()) {
    auto cpus = parse_cpu_list(o.worker_cpus);
    if (!cpus) return make_error("--worker-cpus: {}", cpus.error().message());
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
      for (int c : *cpus) {
        if (!CPU_ISSET(c, &allowed))
          return make_error("--worker-cpus: CPU {} is not available to this process ({} CPUs are)", c,
                            CPU_COUNT(&allowed));
      }
    }
    o.worker_cpu_list = std::move(*cpus);
  }
  if (o.hostname.empty()) {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) == 0 && buf[0]) o.hostname = buf;
    else o.hostname = "localhost";
  }
  if (o.node_name.empty()) o.node_name = o.hostname;
  if (o.retry_max < o.retry_min) return make_error("--retry-max must not be below --retry-min");
  for (const auto& s : o.dns_servers) {
    auto addr = routing::dns::parse_dns_server(s);
    if (!addr) return make_error("--dns-server {}: {}", s, addr.error().message());
    o.dns.servers.push_back(*addr);
  }
  auto pref = routing::dns::parse_ip_preference(o.ip_preference);
  if (!pref) return make_error("--ip-preference: {}", pref.error().message());
  o.dns.ip_preference = *pref;
  if (o.dns_ttl_max < o.dns_ttl_min) return make_error("--dns-ttl-max must not be below --dns-ttl-min");
  o.dns.cache.min_ttl = std::chrono::seconds(o.dns_ttl_min);
  o.dns.cache.max_ttl = std::chrono::seconds(o.dns_ttl_max);
  o.dns.cache.capacity = o.dns_cache_size;
  o.dns.address_cap = o.mx_address_cap;
  if (o.listen.empty()) return make_error("--listen: at least one address is needed");
  // The certificate, key and credentials are loaded now: a bad file stops the daemon at start (exit 2).
  auto security = load_listener_security({o.tls_cert, o.tls_key, o.require_tls, o.auth_file});
  if (!security) return security.error();
  o.security = std::move(*security);
  return o;
}

}  // namespace ringmail::engine
