// Knot start/stop for tests (see knot_server.h).
#include "tests/routing/dns/knot_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

extern char** environ;

namespace ringmail::testing {
namespace {

// A port free for both UDP and TCP on 127.0.0.1 a moment ago.
Result<uint16_t> free_port() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bool ok = bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
              getsockname(u, reinterpret_cast<sockaddr*>(&a), &len) == 0 &&
              bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(u);
    close(t);
    if (ok) return ntohs(a.sin_port);
  }
  return make_error("no free loopback port for knotd");
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

std::string read_fixture(const std::string& name) {
  std::ifstream in(std::string(RINGMAIL_DNS_FIXTURES) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

SocketAddress KnotServer::address() const {
  return *SocketAddress::parse(fmt::format("127.0.0.1:{}", port_));
}

Result<std::unique_ptr<KnotServer>> KnotServer::start(const std::vector<Zone>& zones) {
  std::unique_ptr<KnotServer> k(new KnotServer());
  char tmpl[] = "/tmp/ringmail-knot-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return make_error("mkdtemp failed");
  k->dir_ = tmpl;
  auto port = free_port();
  if (!port) return port.error();
  k->port_ = *port;
  std::filesystem::create_directories(k->dir_ + "/run");
  std::filesystem::create_directories(k->dir_ + "/db");
  std::string conf = fmt::format(
      "server:\n    listen: 127.0.0.1@{0}\n    rundir: \"{1}/run\"\n"
      "log:\n  - target: stderr\n    any: info\n"
      "database:\n    storage: \"{1}/db\"\n"
      "control:\n    listen: \"{1}/run/knot.sock\"\n"
      "mod-stats:\n  - id: counts\n    query-type: on\n    request-protocol: on\n"
      "template:\n  - id: default\n    storage: \"{1}\"\n    zonefile-sync: -1\n    journal-content: none\n"
      "    global-module: mod-stats/counts\n"
      "zone:\n",
      k->port_, k->dir_);
  for (const Zone& z : zones) {
    write_file(fmt::format("{}/{}.zone", k->dir_, z.name), z.text);
    conf += fmt::format("  - domain: {0}\n    file: {0}.zone\n", z.name);
  }
  write_file(k->dir_ + "/knot.conf", conf);

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return make_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  std::string conf_path = k->dir_ + "/knot.conf";
  const char* argv[] = {"knotd", "-c", conf_path.c_str(), nullptr};
  int rc = posix_spawnp(&k->pid_, "knotd", &fa, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  k->log_fd_ = pipefd[0];
  if (rc != 0) return make_error("cannot start knotd: {} (apt-get install knot)", strerror(rc));

  // Ready when the log says the server started and every zone loaded or failed to.
  std::string log;
  auto settled = [&] {
    if (log.find("server started") == std::string::npos) return false;
    for (const Zone& z : zones)
      if (log.find(fmt::format("[{}.] loaded", z.name)) == std::string::npos &&
          log.find(fmt::format("[{}.] zone event 'load' failed", z.name)) == std::string::npos)
        return false;
    return true;
  };
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  char buf[4096];
  while (!settled()) {
    if (std::chrono::steady_clock::now() > give_up) return make_error("knotd not ready:\n{}", log);
    pollfd p{k->log_fd_, POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    ssize_t n = read(k->log_fd_, buf, sizeof buf);
    if (n <= 0) return make_error("knotd exited:\n{}", log);
    log.append(buf, static_cast<size_t>(n));
  }
  fcntl(k->log_fd_, F_SETFL, O_NONBLOCK);
  return k;
}

uint64_t KnotServer::counter(const std::string& name) const {
  char buf[4096];
  while (read(log_fd_, buf, sizeof buf) > 0) {
  }  // keep knotd's stderr pipe from filling
  std::string cmd = fmt::format("knotc -s {}/run/knot.sock stats mod-stats 2>/dev/null", dir_);
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return 0;
  std::string want = "mod-stats." + name + " = ";
  uint64_t value = 0;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    std::string_view l(line);
    if (l.substr(0, want.size()) == want) value = std::strtoull(line + want.size(), nullptr, 10);
  }
  pclose(f);
  return value;
}

KnotServer::~KnotServer() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  if (log_fd_ >= 0) close(log_fd_);
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

}  // namespace ringmail::testing
