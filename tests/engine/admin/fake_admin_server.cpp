// A test peer for the ringmail-queue CLI: the real admin server over the fake backend on a loopback
// port. Writes "127.0.0.1:PORT" to the file named by its first argument (atomically), logs every
// backend call to stdout, and exits when stdin closes. Used by tests/integration/test_admin_cli.py.
#include <cstdio>
#include <iostream>
#include <string>

#include "common/text_io.h"
#include "engine/admin/admin_server.h"
#include "tests/engine/admin/fake_backend.h"

int main(int argc, char** argv) {
  using namespace ringmail;
  if (argc < 2) {
    std::fprintf(stderr, "usage: fake_admin_server READY_FILE [LISTEN]\n");
    return 2;
  }
  static admin::testing::FakeBackend backend(SystemClock::instance().wall());
  if (argc > 3 && std::string(argv[3]) == "--fail-reload") backend.fail_reload = true;
  admin::AdminServerOptions o;
  o.listen = argc > 2 ? argv[2] : "127.0.0.1:0";
  auto server = admin::AdminServer::start(backend, o);
  if (!server) {
    std::fprintf(stderr, "fake_admin_server: %s\n", server.error().message().c_str());
    return 1;
  }
  if (!write_file_atomically(argv[1], (*server)->address() + "\n")) {
    std::perror("fake_admin_server: ready file");
    return 1;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  (*server)->stop();
  for (const std::string& call : backend.calls) std::cout << call << "\n";
  return 0;
}
