// The ringmail daemon's command-line flags: definitions, defaults and validation. `--help`
// documents every flag; defaults are chosen for a production relay (Postfix-like limits,
// loopback-only relaying).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/net.h"
#include "common/result.h"
#include "engine/server/listener_security.h"
#include "routing/dns/dns_settings.h"

namespace ringmail::engine {

struct DaemonOptions {
  std::vector<std::string> listen = {"0.0.0.0:25"};  // SMTP listen addresses (host:port)
  std::string hostname;                  // our name (greeting, Received:); default gethostname()
  std::string spool_dir = "/var/spool/ringmail";
  std::string spool_io = "buffered";  // buffered (write + fdatasync) | direct (O_DIRECT + RWF_DSYNC where supported)
  std::string config_file;               // connector file (TOML); empty = none (mail is held)
  std::string protocol_log_dir;          // outbound protocol log of connectors with protocol_log = true
  std::string tracking_log_dir;          // message-tracking log (JSON lines); empty = none
  unsigned log_max_age = 30;             // days of tracking and protocol log files kept; 0 = all
  std::string node_name;                 // this node's name for connectors' `nodes` (default: hostname)
  std::vector<std::string> node_addresses;  // this node's egress IPs, for the locality tie-break
  unsigned workers = 0;                  // 0 = one per core
  std::string worker_cpus;               // --worker-cpus as given ("" = the scheduler places workers)
  std::vector<int> worker_cpu_list;      // parsed: worker i runs on worker_cpu_list[i % size]
  std::string relay_networks = "127.0.0.0/8,::1/128";
  NetworkList relay;                     // parsed relay_networks
  unsigned max_recipients = 1000;        // per message
  uint64_t max_message_size = 35ull * 1024 * 1024;
  int max_connections = 2000;            // inbound, all workers together
  unsigned command_timeout = 300;        // seconds, RFC 5321 §4.5.3.2.7
  unsigned data_timeout = 180;           // seconds between DATA blocks
  unsigned shutdown_grace = 10;          // seconds busy sessions may finish on SIGTERM
  bool hold = false;                     // keep all mail queued (no delivery)
  int max_outbound = 10000;              // outbound sessions, all workers together
  unsigned retry_min = 300;              // seconds before the first retry of a deferred recipient
  unsigned retry_max = 4000;             // longest back-off, seconds
  std::string admin_listen;              // --admin ADDR:PORT; empty = no admin plane
  std::vector<std::string> dns_servers;  // --dns-server IP[:PORT] (repeatable); empty = /etc/resolv.conf
  std::string ip_preference = "ipv4";    // --ip-preference ipv4|ipv6|any
  unsigned dns_ttl_min = 30;             // seconds: shorter positive TTLs are raised
  unsigned dns_ttl_max = 86400;          // seconds: longer positive TTLs are lowered
  size_t dns_cache_size = 100000;        // entries per cache (LRU beyond)
  size_t mx_address_cap = 5;             // addresses tried per delivery attempt (at least 2)
  routing::dns::DnsSettings dns;         // filled from the above
  bool admin_any_address = false;        // --admin-allow-non-loopback
  unsigned glitch_retries = 2;           // first failures retried after glitch_interval
  unsigned glitch_interval = 60;         // seconds (never more than retry_min)
  unsigned message_expiration = 172800;  // seconds after arrival: give up, failure DSN (2 days)
  unsigned delay_notice = 14400;         // seconds after arrival: one delay DSN (4 h; 0 = never)
  std::string ready_file;                // written with the bound addresses once listening
  std::string log_level = "info";
  std::string tls_cert;                  // listener certificate (PEM); with tls_key, STARTTLS is offered
  std::string tls_key;                   // listener private key (PEM)
  bool require_tls = false;              // MAIL before STARTTLS gets 530 5.7.0
  std::string auth_file;                 // AUTH credentials (user:$6$ hash lines, mode 0600); empty = no AUTH
  std::shared_ptr<const ListenerSecurity> security;  // loaded from the four above; give it to every WorkerConfig
};

// Parses argv; on --help/--version prints and sets *exit_code to 0 and returns an error-free
// "stop" result with *should_exit = true.
Result<DaemonOptions> parse_daemon_options(int argc, char** argv, bool* should_exit, int* exit_code);

// "35MB", "10k", "1048576" → bytes (binary units: k=1024).
Result<uint64_t> parse_size(std::string_view text);
// A CPU list as taskset and /proc write it: "1", "0-3", "0,2,4-7" (in the order given, no repeats).
Result<std::vector<int>> parse_cpu_list(std::string_view text);

}  // namespace ringmail::engine
