// Tests of routing/config_loader.cpp: every accepted key with its default, and every rejected
// form with the exact "FILE:LINE: reason" an operator sees.
#include "routing/config_loader.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ringmail::routing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A temporary directory with secret and CA files for the keys that name files; removed afterwards.
class TempFiles {
 public:
  TempFiles() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ringmail-cfg-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) dir_ = tmpl;
  }
  ~TempFiles() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& text, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    return path;
  }

 private:
  std::string dir_;  // mkdtemp directory
};

// Replaces each placeholder (a whole word such as "PW") by its path.
std::string with_paths(std::string text, std::initializer_list<std::pair<std::string, std::string>> paths) {
  for (const auto& [word, path] : paths) {
    size_t at = text.find("\"" + word + "\"");
    if (at != std::string::npos) text.replace(at + 1, word.size(), path);
  }
  return text;
}

TEST(ConfigLoader, AppliesDefaults) {
  ConfigLoad load = parse_connector_text(R"(
[[connector]]
name = "Internet"
address_spaces = ["*"]
)", "t.toml");
  ASSERT_TRUE(load.config) << load.errors.front();
  const Connector& c = load.config->connectors.at(0);
  EXPECT_EQ(c.name, "Internet");
  EXPECT_TRUE(c.enabled);
  EXPECT_FALSE(c.uses_smart_hosts());
  EXPECT_EQ(c.port, 25);
  EXPECT_EQ(c.max_message_size, 0u);
  EXPECT_EQ(c.tls, TlsPolicy::kOpportunistic);
  EXPECT_EQ(c.max_connections_per_destination, 20u);
  EXPECT_EQ(c.max_messages_per_connection, 1000u);
  EXPECT_EQ(c.max_recipients_per_transaction, 100u);
  EXPECT_EQ(c.connection_idle_timeout, std::chrono::seconds(10));
  EXPECT_FALSE(c.protocol_log);
  EXPECT_FALSE(c.auth.has_value());
  EXPECT_EQ(c.line, 2u);
  EXPECT_EQ(c.address_spaces.at(0).kind, PatternKind::kAll);
  EXPECT_EQ(c.address_spaces.at(0).line, 4u);
}

// Every error is one printable line, even when it quotes the file: toml++ quotes the character it
// saw (a newline here), and a string value may hold control characters through escapes. Found by
// tests/fuzz/connector_config_fuzz.
TEST(ConfigLoader, ErrorsAreOnePrintableLineEach) {
  ConfigLoad load = parse_connector_text("[[connector]]\nname = \"a\"\nenabled = tru\n", "t.toml");
  ASSERT_EQ(load.errors.size(), 1u);
  EXPECT_EQ(load.errors[0], "t.toml:3: Error while parsing boolean: expected 'true', saw 'tru\\n'");
  load = parse_connector_text(
      "[[connector]]\nname = \"a\"\naddress_spaces = [\"exa\\nmple\\u0007.com\"]\n", "t.toml");
  ASSERT_EQ(load.errors.size(), 1u);
  EXPECT_NE(load.errors[0].find("exa\\nmple\\x07.com"), std::string::npos) << load.errors[0];
  for (char c : load.errors[0]) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << int(c);
}

TEST(ConfigLoader, ParsesEveryKey) {
  TempFiles files;
  std::string pw = files.write("relay.pw", "# the relay password\nS3cret:with colon\n", 0600);
  std::string ca = files.write("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
  ConfigLoad load = parse_connector_text(with_paths(R"(
[[connector]]
name = "Partner"
enabled = false
address_spaces = ["SMTP:*.Contoso.com;5", { domain = "fabrikam.com", cost = 2 },
                  { domain = "*.tailspin.example", type = "SMTP" }]
smart_hosts = ["relay.example.net", "[192.0.2.7]:587", "[IPv6:2001:db8::1]", "198.51.100.4:2525"]
port = 587
fqdn = "Out.Example.org"
source_addresses = ["192.0.2.10", "2001:db8::10"]
nodes = ["mx1", "mx2"]
max_message_size = "35MB"
tls = "verify"
tls_domain = "relay.example.net"
tls_ca_file = "CA"
auth = { mechanism = "plain", username = "ringmail", password_file = "PW" }
max_connections_per_destination = 5
max_messages_per_connection = 50
max_recipients_per_transaction = 200
connection_idle_timeout = "2m"
protocol_log = true
)", {{"CA", ca}, {"PW", pw}}), "t.toml", ConnectorFiles::kRead);
  ASSERT_TRUE(load.config) << load.errors.front();
  const Connector& c = load.config->connectors.at(0);
  EXPECT_FALSE(c.enabled);
  ASSERT_EQ(c.address_spaces.size(), 3u);
  EXPECT_EQ(c.address_spaces[0].pattern(), "*.contoso.com");
  EXPECT_EQ(c.address_spaces[0].cost, 5);
  EXPECT_EQ(c.address_spaces[1].pattern(), "fabrikam.com");
  EXPECT_EQ(c.address_spaces[1].cost, 2);
  EXPECT_EQ(c.address_spaces[2].pattern(), "*.tailspin.example");
  EXPECT_EQ(c.address_spaces[2].line, 6u);
  ASSERT_EQ(c.smart_hosts.size(), 4u);
  EXPECT_EQ(c.smart_hosts[0].host, "relay.example.net");
  EXPECT_EQ(c.smart_hosts[0].port, 0);
  EXPECT_FALSE(c.smart_hosts[0].is_ip_literal);
  EXPECT_EQ(c.smart_hosts[1].host, "192.0.2.7");
  EXPECT_EQ(c.smart_hosts[1].port, 587);
  EXPECT_TRUE(c.smart_hosts[1].is_ip_literal);
  EXPECT_EQ(c.smart_hosts[2].host, "2001:db8::1");
  EXPECT_TRUE(c.smart_hosts[2].is_ip_literal);
  EXPECT_EQ(c.smart_hosts[3].host, "198.51.100.4");
  EXPECT_EQ(c.smart_hosts[3].port, 2525);
  EXPECT_TRUE(c.smart_hosts[3].is_ip_literal);
  EXPECT_EQ(c.port, 587);
  EXPECT_EQ(c.fqdn, "out.example.org");
  EXPECT_THAT(c.source_addresses, ElementsAre("192.0.2.10", "2001:db8::10"));
  EXPECT_THAT(c.nodes, ElementsAre("mx1", "mx2"));
  EXPECT_EQ(c.max_message_size, 35u * 1024 * 1024);
  EXPECT_EQ(c.tls, TlsPolicy::kVerify);
  EXPECT_EQ(c.tls_domain, "relay.example.net");
  ASSERT_TRUE(c.auth.has_value());
  EXPECT_EQ(c.auth->mechanism, "PLAIN");
  EXPECT_EQ(c.auth->username, "ringmail");
  EXPECT_EQ(c.auth->password_file, pw);
  EXPECT_EQ(c.auth->password, "S3cret:with colon");  // the first line that is not a comment
  EXPECT_EQ(c.tls_ca_file, ca);
  EXPECT_FALSE(c.auth_allow_plaintext);
  EXPECT_EQ(c.max_connections_per_destination, 5u);
  EXPECT_EQ(c.max_messages_per_connection, 50u);
  EXPECT_EQ(c.max_recipients_per_transaction, 200u);
  EXPECT_EQ(c.connection_idle_timeout, std::chrono::seconds(120));
  EXPECT_TRUE(c.protocol_log);
}

TEST(ConfigLoader, TimeoutsOverrideRfcDefaultsOneByOne) {
  ConfigLoad load = parse_connector_text(
      "[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\ntimeouts = { connect = 5, final_dot = \"15m\" }\n",
      "t.toml");
  ASSERT_TRUE(load.config) << load.errors.front();
  const auto& t = load.config->connectors[0].timeouts;
  EXPECT_EQ(t.connect, std::chrono::seconds(5));
  EXPECT_EQ(t.final_dot, std::chrono::seconds(900));
  EXPECT_EQ(t.greeting, std::chrono::seconds(300));   // RFC 5321 §4.5.3.2 default kept
  EXPECT_EQ(t.data_init, std::chrono::seconds(120));
  EXPECT_EQ(t.data_block, std::chrono::seconds(180));
}

TEST(ConfigLoader, RetryOverridesPerConnector) {
  ConfigLoad load = parse_connector_text(
      "[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nretry_min = \"1m\"\nretry_max = \"2h\"\n"
      "message_expiration = \"5d\"\ndelay_notice = 0\n"
      "[[connector]]\nname = \"b\"\naddress_spaces = [\"b.example\"]\n",
      "t.toml");
  ASSERT_TRUE(load.config) << load.errors.front();
  const auto& r = load.config->connectors[0].retry;
  EXPECT_EQ(r.min, std::chrono::seconds(60));
  EXPECT_EQ(r.max, std::chrono::seconds(7200));
  EXPECT_EQ(r.expiration, std::chrono::seconds(5 * 86400));
  EXPECT_EQ(r.delay_notice, std::chrono::seconds(0));
  const auto& unset = load.config->connectors[1].retry;
  EXPECT_FALSE(unset.min || unset.max || unset.expiration || unset.delay_notice) << "unset: the daemon's flags";
  ConfigLoad bad = parse_connector_text(
      "[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nretry_min = \"10m\"\nretry_max = \"5m\"\n", "t.toml");
  ASSERT_FALSE(bad.config);
  EXPECT_EQ(bad.errors.front(), "t.toml:5: connector 'a': 'retry_max' is shorter than 'retry_min'");
}

TEST(ConfigLoader, ConvertsInternationalisedPatterns) {
  ConfigLoad load = parse_connector_text(
      "[[connector]]\nname = \"idn\"\naddress_spaces = [\"*.bücher.example;3\"]\n", "t.toml");
  ASSERT_TRUE(load.config) << load.errors.front();
  EXPECT_EQ(load.config->connectors[0].address_spaces[0].domain, "xn--bcher-kva.example");
}

struct RejectCase {
  const char* body;      // connector-file text (line 1 is "[[connector]]" unless noted)
  const char* expected;  // the one error expected, exactly
};

TEST(ConfigLoader, RejectsEveryBadForm) {
  const std::string long_label(64, 'a');
  const std::string too_long_label_case =
      "[[connector]]\nname = \"a\"\naddress_spaces = [\"" + long_label + ".com\"]\n";
  const RejectCase cases[] = {
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nbogus = 1\n",
       "t.toml:4: connector 'a': unknown key 'bogus'"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*example.com\"]\n",
       "t.toml:3: connector 'a': bad pattern '*example.com': a wildcard must be a whole label, as "
       "in '*.example.com'"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"a.*.b\"]\n",
       "t.toml:3: connector 'a': bad pattern 'a.*.b': '*' is only allowed as the first label"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"a..b\"]\n",
       "t.toml:3: connector 'a': bad pattern 'a..b': empty label"},
      {too_long_label_case.c_str(),
       "t.toml:3: connector 'a': bad pattern 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       ".com': label longer than 63 characters"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"example.com;0\"]\n",
       "t.toml:3: connector 'a': cost 0 is out of range 1-100"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [{ domain = \"example.com\", cost = 101 }]\n",
       "t.toml:3: connector 'a': cost 101 is out of range 1-100"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"X400:c=US;a= ;p=Org;5\"]\n",
       "t.toml:3: connector 'a': address space type 'X400' is not supported (only SMTP)"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [{ domain = \"x.com\", type = \"X400\" }]\n",
       "t.toml:3: connector 'a': address space type 'X400' is not supported (only SMTP)"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [{ domain = \"x.com\", weight = 2 }]\n",
       "t.toml:3: connector 'a': unknown key 'weight' in an address space"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"x.com\", \"X.com.\"]\n",
       "t.toml:3: connector 'a': address space 'x.com' is listed twice"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = []\n",
       "t.toml:3: connector 'a': 'address_spaces' is empty"},
      {"[[connector]]\nname = \"a\"\n",
       "t.toml:1: connector 'a': no 'address_spaces': the connector would never be selected"},
      {"[[connector]]\naddress_spaces = [\"*\"]\n", "t.toml:1: connector has no 'name'"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\n[[connector]]\nname = \"A\"\n"
       "address_spaces = [\"x.com\"]\n",
       "t.toml:4: duplicate connector name 'A' (first at line 1)"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nsmart_hosts = [\"r.example\"]\n"
       "dns_routing = true\n",
       "t.toml:5: connector 'a': dns_routing = true and smart_hosts exclude each other: route by "
       "MX or through smart hosts"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\ndns_routing = false\n",
       "t.toml:4: connector 'a': dns_routing = false needs smart_hosts"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\ntls = \"required\"\n"
       "auth = { mechanism = \"PLAIN\", username = \"u\", password_file = \"/p\" }\n",
       "t.toml:5: connector 'a': auth is only used with smart_hosts"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nsmart_hosts = [\"r.example\"]\n"
       "auth = { mechanism = \"PLAIN\", username = \"u\", password_file = \"/p\" }\n",
       "t.toml:5: connector 'a': auth needs tls = \"required\" or \"verify\" (tls is "
       "\"opportunistic\"): a password is never sent in clear unless auth_allow_plaintext = true"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nsmart_hosts = [\"r.example\"]\n"
       "tls = \"required\"\nauth = { mechanism = \"CRAM-MD5\", username = \"u\", password_file = "
       "\"/p\" }\n",
       "t.toml:6: connector 'a': auth mechanism 'CRAM-MD5' is not supported (PLAIN or LOGIN)"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\ntls_domain = \"x.example\"\n",
       "t.toml:4: connector 'a': tls_domain only applies with tls = \"verify\""},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nsmart_hosts = [\"[192.0.2.1]\"]\n"
       "tls = \"verify\"\n",
       "t.toml:5: connector 'a': tls = \"verify\" with the IP smart host '192.0.2.1' needs "
       "tls_domain"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\ntls = \"always\"\n",
       "t.toml:4: connector 'a': tls 'always' is not one of none, opportunistic, required, verify"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nport = 0\n",
       "t.toml:4: connector 'a': 'port' = 0 is out of range 1-65535"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nsmart_hosts = [\"r.example:99999\"]\n",
       "t.toml:4: connector 'a': smart host 'r.example:99999': bad port '99999'"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nsmart_hosts = [\"[not-an-ip]\"]\n",
       "t.toml:4: connector 'a': smart host '[not-an-ip]': 'not-an-ip' is not an IP address"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nsmart_hosts = []\n",
       "t.toml:4: connector 'a': 'smart_hosts' is empty"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nmax_message_size = \"35XB\"\n",
       "t.toml:4: connector 'a': 'max_message_size': bad size unit 'XB' in '35XB' (B, KB, MB, GB)"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nmax_message_size = 0\n",
       "t.toml:4: connector 'a': 'max_message_size' must be positive (or \"unlimited\")"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nconnection_idle_timeout = \"2w\"\n",
       "t.toml:4: connector 'a': 'connection_idle_timeout': bad duration unit 'w' in '2w' (s, m, h, d)"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nconnection_idle_timeout = \"2d\"\n",
       "t.toml:4: connector 'a': 'connection_idle_timeout': 172800 s is out of range 1 s - 1 day"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nmessage_expiration = \"91d\"\n",
       "t.toml:4: connector 'a': 'message_expiration': 7862400 s is out of range 1 s - 90 days"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nconnection_idle_timeout = 0\n",
       "t.toml:4: connector 'a': 'connection_idle_timeout': 0 s is out of range 1 s - 1 day"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nenabled = \"yes\"\n",
       "t.toml:4: connector 'a': 'enabled' must be true or false"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nsource_addresses = [\"mx1\"]\n",
       "t.toml:4: connector 'a': source address 'mx1' is not an IP address"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nmax_messages_per_connection = 0\n",
       "t.toml:4: connector 'a': 'max_messages_per_connection' = 0 is out of range 1-100000"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nfqdn = \"*.example.com\"\n",
       "t.toml:4: connector 'a': fqdn '*.example.com': '*' is only allowed as a whole first label"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\ntimeouts = { greting = \"5m\" }\n",
       "t.toml:4: connector 'a': unknown timeout 'greting' (connect, greeting, helo, mail, rcpt, data_init, "
       "data_block, final_dot, quit)"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\ntimeouts = { final_dot = \"25h\" }\n",
       "t.toml:4: connector 'a': 'timeouts.final_dot': 90000 s is out of range 1 s - 1 day"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\ntimeouts = \"5m\"\n",
       "t.toml:4: connector 'a': 'timeouts' must be a table such as { connect = \"30s\", final_dot = \"10m\" }"},
      {"routes = 1\n", "t.toml:1: unknown top-level key 'routes' (expected [[connector]] tables)"},
      {"connector = { name = \"a\" }\n",
       "t.toml:1: 'connector' must be written as [[connector]] tables"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"\n", nullptr},  // TOML syntax: see below
  };
  for (const RejectCase& c : cases) {
    SCOPED_TRACE(c.body);
    ConfigLoad load = parse_connector_text(c.body, "t.toml");
    EXPECT_EQ(load.config, nullptr);
    ASSERT_EQ(load.errors.size(), 1u) << ::testing::PrintToString(load.errors);
    if (c.expected != nullptr) {
      EXPECT_EQ(load.errors[0], c.expected);
    } else {
      EXPECT_THAT(load.errors[0], HasSubstr("t.toml:"));
    }
  }
}

TEST(ConfigLoader, ReportsSyntaxErrorsWithTheirLine) {
  ConfigLoad load = parse_connector_text("[[connector]]\nname = \"a\"\nport = = 2\n", "t.toml");
  ASSERT_EQ(load.errors.size(), 1u);
  EXPECT_THAT(load.errors[0], ::testing::StartsWith("t.toml:3: "));
}

TEST(ConfigLoader, CollectsEveryErrorInTheFile) {
  ConfigLoad load = parse_connector_text(R"([[connector]]
name = "a"
address_spaces = ["*example.com", "ok.example"]
port = 70000

[[connector]]
name = "b"
address_spaces = ["*"]
color = "blue"
)", "t.toml");
  EXPECT_EQ(load.config, nullptr);
  EXPECT_THAT(load.errors,
              ElementsAre(HasSubstr("t.toml:3: connector 'a': bad pattern '*example.com'"),
                          "t.toml:4: connector 'a': 'port' = 70000 is out of range 1-65535",
                          "t.toml:9: connector 'b': unknown key 'color'"));
  auto joined = load_connector_text(R"([[connector]]
name = "a"
port = 70000
)", "t.toml");
  ASSERT_FALSE(joined.ok());
  EXPECT_EQ(joined.error().message(),
            "t.toml:1: connector 'a': no 'address_spaces': the connector would never be selected\n"
            "t.toml:3: connector 'a': 'port' = 70000 is out of range 1-65535");
}

TEST(ConfigLoader, ErrorsComeInLineOrderAndDuplicatesOfBrokenConnectorsCount) {
  ConfigLoad load = parse_connector_text(R"([[connector]]
zzz = 1
name = "a"
address_spaces = ["*"]
aaa = 2
[[connector]]
name = "A"
)", "t.toml");
  EXPECT_THAT(load.errors,
              ElementsAre("t.toml:2: connector 'a': unknown key 'zzz'",
                          "t.toml:5: connector 'a': unknown key 'aaa'",
                          "t.toml:6: connector 'A': no 'address_spaces': the connector would "
                          "never be selected",
                          "t.toml:6: duplicate connector name 'A' (first at line 1)"));
}

// Repeated patterns are found in long lists too (past the short-list scan), each repeat
// reported on its own line, and "x.com" and "*.x.com" are different patterns.
TEST(ConfigLoader, FindsRepeatedPatternsInLongLists) {
  std::string text = "[[connector]]\nname = \"a\"\naddress_spaces = [\n";
  for (int i = 0; i < 50; ++i) text += "  \"d" + std::to_string(i) + ".example.com\",\n";  // lines 4-53
  text += "  \"*.d3.example.com\",\n";   // line 54: a different pattern
  text += "  \"D40.example.com.\",\n";   // line 55: repeats line 44
  text += "  \"d1.example.com;7\",\n";   // line 56: repeats line 5 (cost does not matter)
  text += "  \"*.d3.example.com\",\n";   // line 57: repeats line 54
  text += "]\n";
  ConfigLoad load = parse_connector_text(text, "t.toml");
  EXPECT_FALSE(load.config);
  EXPECT_THAT(load.errors,
              ::testing::ElementsAre(
                  "t.toml:55: connector 'a': address space 'd40.example.com' is listed twice",
                  "t.toml:56: connector 'a': address space 'd1.example.com' is listed twice",
                  "t.toml:57: connector 'a': address space '*.d3.example.com' is listed twice"));
}

const char* const kAuthFileConnector = R"([[connector]]
name = "relay"
address_spaces = ["*"]
smart_hosts = ["relay.example.net:587"]
tls = "required"
auth_file = "AUTH"
)";

TEST(ConfigLoader, AuthFileGivesUserAndPassword) {
  TempFiles files;
  std::string path = files.write("relay.auth", "\n# comment\nrelayuser:pa:ss word\n", 0600);
  ConfigLoad load = parse_connector_text(with_paths(kAuthFileConnector, {{"AUTH", path}}), "t.toml", ConnectorFiles::kRead);
  ASSERT_TRUE(load.config) << load.errors.front();
  const Connector& c = load.config->connectors.at(0);
  ASSERT_TRUE(c.auth.has_value());
  EXPECT_EQ(c.auth->username, "relayuser");
  EXPECT_EQ(c.auth->password, "pa:ss word");
  EXPECT_EQ(c.auth->mechanism, "");  // chosen from what the server offers
}

TEST(ConfigLoader, AuthFileReadableByOthersIsRefusedWithItsLine) {
  TempFiles files;
  std::string path = files.write("relay.auth", "relayuser:secretpw\n", 0640);
  ConfigLoad load = parse_connector_text(with_paths(kAuthFileConnector, {{"AUTH", path}}), "t.toml", ConnectorFiles::kRead);
  EXPECT_EQ(load.config, nullptr);
  ASSERT_EQ(load.errors.size(), 1u);
  EXPECT_EQ(load.errors[0], "t.toml:6: connector 'relay': auth_file " + path +
                                " is accessible by group or others (mode 0640): it holds a password; chmod 600 it");
  std::string other = files.write("other.auth", "relayuser:secretpw\n", 0604);
  load = parse_connector_text(with_paths(kAuthFileConnector, {{"AUTH", other}}), "t.toml", ConnectorFiles::kRead);
  ASSERT_EQ(load.errors.size(), 1u);
  EXPECT_THAT(load.errors[0], HasSubstr("mode 0604"));
}

TEST(ConfigLoader, AuthFileProblemsNeverQuoteTheSecret) {
  TempFiles files;
  std::string bad = files.write("bad.auth", "no-colon-secretpw\n", 0600);
  ConfigLoad load = parse_connector_text(with_paths(kAuthFileConnector, {{"AUTH", bad}}), "t.toml", ConnectorFiles::kRead);
  ASSERT_EQ(load.errors.size(), 1u);
  EXPECT_THAT(load.errors[0], HasSubstr("t.toml:6: connector 'relay': auth_file"));
  EXPECT_THAT(load.errors[0], HasSubstr("username:password"));
  EXPECT_THAT(load.errors[0], ::testing::Not(HasSubstr("secretpw")));
  std::string empty = files.write("empty.auth", "# nothing\n", 0600);
  load = parse_connector_text(with_paths(kAuthFileConnector, {{"AUTH", empty}}), "t.toml", ConnectorFiles::kRead);
  ASSERT_EQ(load.errors.size(), 1u);
  EXPECT_THAT(load.errors[0], HasSubstr("holds no credentials"));
  load = parse_connector_text(with_paths(kAuthFileConnector, {{"AUTH", "/nonexistent/x.auth"}}), "t.toml", ConnectorFiles::kRead);
  ASSERT_EQ(load.errors.size(), 1u);
  EXPECT_EQ(load.errors[0], "t.toml:6: connector 'relay': auth_file /nonexistent/x.auth: No such file or directory");
}

TEST(ConfigLoader, AuthPolicyCombinations) {
  TempFiles files;
  std::string path = files.write("relay.auth", "u:p\n", 0600);
  const RejectCase cases[] = {
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nsmart_hosts = [\"r.example\"]\n"
       "auth_file = \"AUTH\"\n",
       "t.toml:5: connector 'a': auth_file needs tls = \"required\" or \"verify\" (tls is \"opportunistic\"): a "
       "password is never sent in clear unless auth_allow_plaintext = true"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nsmart_hosts = [\"r.example\"]\n"
       "auth_allow_plaintext = true\n",
       "t.toml:5: connector 'a': auth_allow_plaintext without auth or auth_file"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nauth_file = \"AUTH\"\ntls = \"required\"\n",
       "t.toml:4: connector 'a': auth_file is only used with smart_hosts"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nsmart_hosts = [\"r.example\"]\ntls = \"required\"\n"
       "auth_file = \"AUTH\"\nauth = { mechanism = \"PLAIN\", username = \"u\", password_file = \"AUTH\" }\n",
       "t.toml:6: connector 'a': auth and auth_file exclude each other: give the credentials once"},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\ntls_ca_file = \"/x.pem\"\n",
       "t.toml:4: connector 'a': tls_ca_file only applies with tls = \"verify\""},
      {"[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\ntls = \"verify\"\ntls_ca_file = \"/nonexistent/ca.pem\"\n",
       "t.toml:1: connector 'a': tls_ca_file /nonexistent/ca.pem: No such file or directory"},
  };
  for (const RejectCase& c : cases) {
    std::string body = with_paths(c.body, {{"AUTH", path}});
    body = with_paths(body, {{"AUTH", path}});
    SCOPED_TRACE(body);
    ConfigLoad load = parse_connector_text(body, "t.toml", ConnectorFiles::kRead);
    EXPECT_EQ(load.config, nullptr);
    ASSERT_EQ(load.errors.size(), 1u) << ::testing::PrintToString(load.errors);
    EXPECT_EQ(load.errors[0], c.expected);
  }
  // Opting in to clear text makes auth with opportunistic TLS acceptable.
  ConfigLoad ok = parse_connector_text(
      with_paths("[[connector]]\nname = \"a\"\naddress_spaces = [\"*\"]\nsmart_hosts = [\"r.example\"]\n"
                 "auth_file = \"AUTH\"\nauth_allow_plaintext = true\n",
                 {{"AUTH", path}}),
      "t.toml", ConnectorFiles::kRead);
  ASSERT_TRUE(ok.config) << ok.errors.front();
  EXPECT_TRUE(ok.config->connectors[0].auth_allow_plaintext);
}

TEST(ConfigLoader, FilesAreOnlyOpenedWhenAsked) {
  // The route explainer and --check do not need the secrets; the daemon (load_connector_*) does.
  std::string text = with_paths(kAuthFileConnector, {{"AUTH", "/nonexistent/x.auth"}});
  ConfigLoad skip = parse_connector_text(text, "t.toml");
  ASSERT_TRUE(skip.config) << skip.errors.front();
  EXPECT_EQ(skip.config->connectors[0].auth->password, "");
  auto daemon = load_connector_text(text, "t.toml");
  ASSERT_FALSE(daemon.ok());
  EXPECT_THAT(daemon.error().message(), HasSubstr("t.toml:6: connector 'relay': auth_file /nonexistent/x.auth"));
}

TEST(ConfigLoader, MissingFileIsAnError) {
  auto r = load_connector_file("/nonexistent/ringmail/connectors.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "/nonexistent/ringmail/connectors.toml:0: cannot open the connector file");
}

TEST(ParseSize, UnitsAreBinary) {
  EXPECT_EQ(*parse_size("35MB"), 35u << 20);
  EXPECT_EQ(*parse_size("512 KiB"), 512u << 10);
  EXPECT_EQ(*parse_size("1GB"), 1u << 30);
  EXPECT_EQ(*parse_size("1048576"), 1048576u);
  EXPECT_EQ(*parse_size("unlimited"), 0u);
  EXPECT_FALSE(parse_size("MB").ok());
  EXPECT_FALSE(parse_size("0MB").ok());
  EXPECT_FALSE(parse_size("-1").ok());
}

TEST(ParseDuration, AcceptsSecondsMinutesHours) {
  EXPECT_EQ(*parse_duration("30s"), std::chrono::seconds(30));
  EXPECT_EQ(*parse_duration("10m"), std::chrono::seconds(600));
  EXPECT_EQ(*parse_duration("1h"), std::chrono::seconds(3600));
  EXPECT_EQ(*parse_duration("90"), std::chrono::seconds(90));
  EXPECT_FALSE(parse_duration("soon").ok());
}

}  // namespace
}  // namespace ringmail::routing
