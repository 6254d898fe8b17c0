// Reading the connector file (TOML, one [[connector]] table per send connector) into a validated,
// immutable Config. Every problem is collected as "FILE:LINE: reason" so `ringmail-route --check`
// can print them all at once. Runs at start-up and on reload, never on the delivery path.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "routing/connector.h"

namespace ringmail::routing {

// The outcome of loading: a Config when there were no errors; otherwise every error found.
struct ConfigLoad {
  std::shared_ptr<const Config> config;  // null when errors is non-empty
  std::vector<std::string> errors;       // "FILE:LINE: reason", in file order
};

// Whether the files a connector names are opened while loading: the credentials of `auth` /
// `auth_file` (refused when group or others may access them; the secret is read into
// SmartHostAuth::password) and `tls_ca_file` (must be readable). The daemon loads with kRead; tools
// that only explain or check routes (and unit tests of routing) may skip them.
enum class ConnectorFiles : uint8_t { kSkip, kRead };

// Parses connector-file text; name_for_errors is used as FILE in messages.
ConfigLoad parse_connector_text(std::string_view text, std::string_view name_for_errors,
                                ConnectorFiles files = ConnectorFiles::kSkip);
// Reads and parses a file.
ConfigLoad read_connector_file(const std::string& path, ConnectorFiles files = ConnectorFiles::kSkip);

// The same as Results, for the daemon: files are read (kRead). The Error message joins every
// "FILE:LINE: reason" with newlines.
Result<std::shared_ptr<const Config>> load_connector_file(const std::string& path);
Result<std::shared_ptr<const Config>> load_connector_text(std::string_view text,
                                                          std::string_view name_for_errors);

// "35MB", "512 KiB", "1GB", "1048576", "unlimited" (0). Units are binary (1 KB = 1024 bytes),
// as in Exchange's size fields. Used by the config and by `ringmail-route --size`.
Result<uint64_t> parse_size(std::string_view text);
// "30s", "10m", "1h", "90" (seconds).
Result<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace ringmail::routing
