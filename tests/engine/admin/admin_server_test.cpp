// The admin server over real HTTP on a loopback port 0, with the fake backend: every endpoint,
// status codes, the table format, /metrics, and the refusal of non-loopback addresses.
#include "engine/admin/admin_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include "tests/engine/admin/fake_backend.h"

namespace ringmail::admin {
namespace {

using testing::FakeBackend;

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    metrics_.counter("ringmail_messages_received_total", "Messages accepted.").inc(7);
    AdminServerOptions o;
    o.listen = "127.0.0.1:0";
    o.clock = &clock_;
    o.metrics = &metrics_;
    auto s = AdminServer::start(backend_, o);
    ASSERT_TRUE(s.ok()) << s.error().message();
    server_ = std::move(*s);
    ASSERT_NE(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }

  httplib::Result get(const std::string& path) { return client_->Get(path.c_str()); }
  httplib::Result post(const std::string& path) { return client_->Post(path.c_str()); }

  ManualClock clock_;
  FakeBackend backend_{clock_.wall()};
  metrics::Registry metrics_;
  std::unique_ptr<AdminServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

bool has(const std::string& s, std::string_view needle) { return s.find(needle) != std::string::npos; }

TEST_F(AdminServerTest, ListsQueuesAsJsonBiggestFirst) {
  auto r = get("/queues");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const std::string& b = r->body;
  EXPECT_TRUE(has(b, R"({"id":"smtp:example.com","next_hop":"example.com","connector":"internet","state":"Retry",)"
                     R"("messages":2,"recipients":2,"oldest_age_seconds":7200,)"
                     R"("last_error":"451 4.7.1 greylisted, try again later","next_retry":"2027-01-15T08:05:00Z",)"
                     R"("next_retry_in_seconds":300})"))
      << b;
  EXPECT_TRUE(has(b, R"("connector":"","state":"Unreachable")"));
  EXPECT_TRUE(has(b, R"("totals":{"queues":3,"messages":3,"recipients":3})")) << b;
  EXPECT_LT(b.find("smtp:example.com"), b.find("unreachable"));  // 2 recipients before 1
}

TEST_F(AdminServerTest, ListsQueuesAsATable) {
  auto r = get("/queues?format=table");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(has(r->get_header_value("Content-Type"), "text/plain"));
  EXPECT_TRUE(has(r->body, "QUEUE             NEXT HOP         CONNECTOR  STATE        MSGS  RCPTS  OLDEST  NEXT RETRY  LAST ERROR\n"))
      << r->body;
  EXPECT_TRUE(has(r->body, "smtp:example.com  example.com      internet   Retry           2      2   2h00m  in 5m00s    451 4.7.1"))
      << r->body;
  EXPECT_TRUE(has(r->body, "3 queues, 3 messages, 3 recipients\n"));
}

TEST_F(AdminServerTest, ListsMessagesOfAQueueWithALimit) {
  auto r = get("/queues/smtp:example.com/messages");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(has(r->body, R"({"queue":"smtp:example.com","total":2,"messages":[{"id":"00000000000000A1")")) << r->body;
  EXPECT_TRUE(has(r->body, R"("sender":"","size":512)"));
  EXPECT_EQ(backend_.calls.back(), "list_messages smtp:example.com 1000");

  r = get("/queues/smtp%3Aexample.com/messages?limit=1&format=table");  // percent-encoded id
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(has(r->body, "queue smtp:example.com: 2 messages (1 shown)\n")) << r->body;
  EXPECT_TRUE(has(r->body, "00000000000000A1  alice@example.net  2048  2h00m      2  Mixed")) << r->body;
  EXPECT_EQ(backend_.calls.back(), "list_messages smtp:example.com 1");

  r = get("/queues/nope/messages");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "{\"ok\":false,\"error\":\"no queue nope\"}\n");

  for (const char* bad : {"ten", "-1", "0", ""}) {
    r = get(std::string("/queues/smtp:example.com/messages?limit=") + bad);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad;
  }
}

TEST_F(AdminServerTest, ShowsOneMessage) {
  auto r = get("/messages/00000000000000A1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(has(r->body, R"({"address":"bob@example.com","queue":"smtp:example.com","state":"Deferred","attempts":3,)"))
      << r->body;
  EXPECT_TRUE(has(r->body, R"("state":"Delivered")"));
  r = get("/messages/00000000000000A1?format=table");
  ASSERT_TRUE(r);
  EXPECT_TRUE(has(r->body, "Sender:    alice@example.net\n")) << r->body;
  EXPECT_TRUE(has(r->body, "bob@example.com    smtp:example.com  Deferred          3  in 5m00s")) << r->body;
  r = get("/messages/FFFF");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(AdminServerTest, SuspendResumeRetryAQueue) {
  auto r = post("/queues/smtp:example.com/suspend");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"ok\":true,\"message\":\"queue smtp:example.com suspended\"}\n");
  EXPECT_TRUE(has(get("/queues")->body, R"("id":"smtp:example.com","next_hop":"example.com","connector":"internet","state":"Suspended")"));

  r = post("/queues/smtp:example.com/retry");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409);  // the fake refuses to retry a suspended queue

  EXPECT_EQ(post("/queues/smtp:example.com/resume")->status, 200);
  EXPECT_EQ(post("/queues/smtp:example.com/retry")->status, 200);
  EXPECT_TRUE(has(get("/queues")->body, R"("state":"Ready","messages":2,"recipients":2,"oldest_age_seconds":7200,)"
                                        R"("last_error":"451 4.7.1 greylisted, try again later","next_retry":null,)"));
  EXPECT_EQ(post("/queues/nope/suspend")->status, 404);
  auto table = client_->Post("/queues/smtp:example.com/suspend?format=table");
  ASSERT_TRUE(table);
  EXPECT_EQ(table->body, "queue smtp:example.com suspended\n");
}

TEST_F(AdminServerTest, MessageActions) {
  EXPECT_EQ(post("/messages/00000000000000A1/suspend")->status, 200);
  EXPECT_TRUE(backend_.messages["00000000000000A1"].suspended);
  EXPECT_EQ(post("/messages/00000000000000A1/resume")->status, 200);
  EXPECT_FALSE(backend_.messages["00000000000000A1"].suspended);
  EXPECT_EQ(post("/messages/00000000000000A1/retry")->status, 200);
  EXPECT_EQ(backend_.calls.back(), "retry_message 00000000000000A1");
  EXPECT_EQ(post("/messages/nope/retry")->status, 404);
}

TEST_F(AdminServerTest, RemoveWithAndWithoutDsn) {
  auto r = client_->Delete("/messages/00000000000000A1?dsn=0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(backend_.calls.back(), "remove_message 00000000000000A1 no-dsn");
  r = client_->Delete("/messages/00000000000000B1");  // default: with a DSN
  ASSERT_TRUE(r);
  EXPECT_EQ(backend_.calls.back(), "remove_message 00000000000000B1 dsn");
  EXPECT_TRUE(has(r->body, "DSN sent"));
  EXPECT_EQ(client_->Delete("/messages/00000000000000A1")->status, 404);  // already gone
  EXPECT_EQ(client_->Delete("/messages/00000000000000A2?dsn=maybe")->status, 400);
  EXPECT_EQ(backend_.messages.size(), 1u);
}

TEST_F(AdminServerTest, Reload) {
  auto r = post("/reload");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(backend_.reloads, 1);
  backend_.fail_reload = true;
  r = post("/reload");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_TRUE(has(r->body, R"({"ok":false,"message":"connectors.toml: line 3: unknown key \"smarthost\""})")) << r->body;
}

TEST_F(AdminServerTest, MetricsInPrometheusTextFormat) {
  auto r = get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_TRUE(has(r->body, "# TYPE ringmail_messages_received_total counter\nringmail_messages_received_total 7\n"));
  EXPECT_EQ(backend_.calls.back(), "refresh_metrics");
}

TEST_F(AdminServerTest, UnknownEndpointsAndMethods) {
  auto r = get("/nothing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_TRUE(has(r->body, "no such endpoint: GET /nothing"));
  r = get("/reload");  // POST only
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(AdminServerTest, StopIsIdempotentAndClosesThePort) {
  uint16_t port = server_->port();
  server_->stop();
  server_->stop();
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(1, 0);
  EXPECT_FALSE(c.Get("/queues"));
}

TEST(AdminServerStart, RefusesNonLoopbackUnlessAllowed) {
  EXPECT_TRUE(*is_loopback_listen("127.0.0.1:8025"));
  EXPECT_TRUE(*is_loopback_listen("127.9.9.9:1"));
  EXPECT_TRUE(*is_loopback_listen("[::1]:8025"));
  EXPECT_TRUE(*is_loopback_listen("localhost:8025"));
  EXPECT_FALSE(*is_loopback_listen("0.0.0.0:8025"));
  EXPECT_FALSE(*is_loopback_listen("[::]:8025"));
  EXPECT_FALSE(*is_loopback_listen("192.0.2.1:8025"));
  EXPECT_FALSE(is_loopback_listen("example.com:8025").ok());

  ManualClock clock;
  FakeBackend backend(clock.wall());
  AdminServerOptions o;
  o.listen = "0.0.0.0:0";
  auto s = AdminServer::start(backend, o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(has(s.error().message(), "not loopback")) << s.error().message();
  o.listen = "127.0.0.1";  // no port
  EXPECT_FALSE(AdminServer::start(backend, o).ok());
}

TEST(AdminServerStart, ReportsAPortInUse) {
  ManualClock clock;
  FakeBackend backend(clock.wall());
  AdminServerOptions o;
  o.listen = "127.0.0.1:0";
  auto first = AdminServer::start(backend, o);
  ASSERT_TRUE(first.ok());
  o.listen = (*first)->address();
  auto second = AdminServer::start(backend, o);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(has(second.error().message(), "cannot listen on " + o.listen)) << second.error().message();
}

TEST(AdminServerStart, ListensOnIpv6Loopback) {
  ManualClock clock;
  FakeBackend backend(clock.wall());
  AdminServerOptions o;
  o.listen = "[::1]:0";
  auto s = AdminServer::start(backend, o);
  if (!s.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << s.error().message();
  httplib::Client c("::1", (*s)->port());
  auto r = c.Get("/queues");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace ringmail::admin
