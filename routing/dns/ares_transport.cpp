// c-ares channel behind DnsTransport (see ares_transport.h).
#include "routing/dns/ares_transport.h"

#include <arpa/nameser.h>

#include <algorithm>
#include <string>

namespace ringmail::routing::dns {
namespace {

struct PendingQuery {
  DnsTransport::Done done;  // the caller's completion
  std::string name;         // as asked (for parsing the answer)
  uint16_t type;            // asked type
  AresTransport* transport; // to release the slot and start a queued query
};

// A status c-ares reports without a usable answer packet, in words for logs and DSNs.
std::string failure_text(int status) {
  switch (status) {
    case ARES_ESERVFAIL: return "SERVFAIL";
    case ARES_EREFUSED: return "REFUSED";
    case ARES_ETIMEOUT: return "timeout";
    case ARES_ECONNREFUSED: return "connection refused";
    case ARES_ECANCELLED: return "cancelled";
    case ARES_EDESTRUCTION: return "resolver shut down";
    default: return ares_strerror(status);
  }
}

}  // namespace

Result<std::unique_ptr<AresTransport>> AresTransport::create(DnsIoDriver& io, const DnsSettings& settings) {
  static const int init = ares_library_init(ARES_LIB_INIT_ALL);
  if (init != ARES_SUCCESS) return make_error("c-ares: {}", ares_strerror(init));
  std::unique_ptr<AresTransport> t(new AresTransport(io));
  ares_options o{};
  o.sock_state_cb = &AresTransport::on_sock_state;
  o.sock_state_cb_data = t.get();
  o.timeout = static_cast<int>(settings.query_timeout.count());
  o.tries = settings.query_tries;
  o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP;
  if (settings.use_edns) o.flags |= ARES_FLAG_EDNS;
  // Small UDP answers cost ~1 KiB of receive buffer each; a burst of a few hundred overflows the
  // default and the lost answers come back only as timeouts (measured with bench/dns/dns_load).
  o.socket_receive_buffer_size = settings.udp_receive_buffer;
  t->max_in_flight_ = std::max<size_t>(settings.max_queries_in_flight, 1);
  char lookups[] = "fb";  // getaddrinfo (smart hosts) consults /etc/hosts; ares_query never does
  o.lookups = lookups;
  int rc = ares_init_options(&t->channel_, &o,
                             ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
                                 ARES_OPT_LOOKUPS | (settings.udp_receive_buffer > 0 ? ARES_OPT_SOCK_RCVBUF : 0));
  if (rc != ARES_SUCCESS) return make_error("c-ares channel: {}", ares_strerror(rc));
  if (!settings.servers.empty()) {
    std::string csv = servers_csv(settings.servers);
    rc = ares_set_servers_ports_csv(t->channel_, csv.c_str());
    if (rc != ARES_SUCCESS) return make_error("DNS servers {}: {}", csv, ares_strerror(rc));
  }
  ares_set_socket_callback(t->channel_, &AresTransport::on_socket_created, t.get());
  return t;
}

AresTransport::~AresTransport() {
  if (channel_) ares_destroy(channel_);  // pending queries end with ARES_EDESTRUCTION
}

void AresTransport::query(std::string_view name, uint16_t type, Done done) {
  if (in_flight_ >= max_in_flight_) {
    ++stats_.queued;
    waiting_.push_back({std::string(name), type, std::move(done)});
    return;
  }
  send(std::string(name), type, std::move(done));
}

void AresTransport::send(std::string name, uint16_t type, Done done) {
  ++stats_.queries;
  ++in_flight_;
  auto* p = new PendingQuery{std::move(done), std::move(name), type, this};
  ares_query(
      channel_, p->name.c_str(), ns_c_in, type,
      [](void* arg, int status, int, unsigned char* abuf, int alen) {
        std::unique_ptr<PendingQuery> p(static_cast<PendingQuery*>(arg));
        DnsRecords r;
        // NXDOMAIN and NODATA come with the packet (and its SOA); so does SERVFAIL under
        // NOCHECKRESP, which parse_answer() reports as temporary.
        if (abuf != nullptr && alen > 0 &&
            (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND ||
             status == ARES_ESERVFAIL || status == ARES_EREFUSED)) {
          r = parse_answer(abuf, alen, p->name, p->type);
        } else {
          r.status = LookupStatus::kTemporary;
          r.error = failure_text(status);
          r.from_server = false;
        }
        AresTransport* self = p->transport;
        --self->in_flight_;
        bool ending = status == ARES_EDESTRUCTION;
        p->done(std::move(r));
        if (!ending) self->start_waiting();
      },
      p);
}

// Starts queued queries while slots are free. Called from completions, which may nest (a
// query that fails at once completes inside ares_query): the flag keeps this one loop.
void AresTransport::start_waiting() {
  if (draining_) return;
  draining_ = true;
  while (!waiting_.empty() && in_flight_ < max_in_flight_) {
    Waiting w = std::move(waiting_.front());
    waiting_.pop_front();
    send(std::move(w.name), w.type, std::move(w.done));
  }
  draining_ = false;
}

void AresTransport::process(int fd, bool readable, bool writable) {
  ares_process_fd(channel_, readable ? fd : ARES_SOCKET_BAD, writable ? fd : ARES_SOCKET_BAD);
}

std::optional<std::chrono::nanoseconds> AresTransport::next_timeout() {
  timeval tv{};
  timeval* t = ares_timeout(channel_, nullptr, &tv);
  if (t == nullptr) return std::nullopt;
  return std::chrono::seconds(t->tv_sec) + std::chrono::microseconds(t->tv_usec);
}

void AresTransport::cancel_all() {
  std::deque<Waiting> waiting;
  waiting.swap(waiting_);
  for (Waiting& w : waiting) {
    DnsRecords r;
    r.error = "cancelled";
    r.from_server = false;
    w.done(std::move(r));
  }
  ares_cancel(channel_);
}

void AresTransport::on_sock_state(void* self, ares_socket_t fd, int readable, int writable) {
  auto* t = static_cast<AresTransport*>(self);
  if (!readable && !writable) {
    t->io_.unwatch(fd);
  } else {
    t->io_.watch(fd, readable != 0, writable != 0);
  }
}

int AresTransport::on_socket_created(ares_socket_t, int type, void* self) {
  auto* t = static_cast<AresTransport*>(self);
  if (type == SOCK_STREAM) {
    ++t->stats_.tcp_sockets;
  } else {
    ++t->stats_.udp_sockets;
  }
  return ARES_SUCCESS;
}

}  // namespace ringmail::routing::dns
