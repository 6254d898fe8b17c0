// Unit tests of common/metrics: registration rules (names, labels, bounded cardinality), the exact
// text exposition of each type, and counts that stay exact under concurrent updates.
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>

namespace ringmail::metrics {
namespace {

TEST(Metrics, NameRules) {
  EXPECT_TRUE(valid_metric_name("ringmail_x_total"));
  EXPECT_TRUE(valid_metric_name("a:b_c9"));
  EXPECT_FALSE(valid_metric_name("9a"));
  EXPECT_FALSE(valid_metric_name("a-b"));
  EXPECT_FALSE(valid_metric_name(""));
  EXPECT_TRUE(valid_label_name("state"));
  EXPECT_FALSE(valid_label_name("__reserved"));
  EXPECT_FALSE(valid_label_name("a:b"));
}

TEST(Metrics, CounterAndGaugeExposition) {
  Registry r;
  Counter& c = r.counter("x_total", "Things counted.");
  Gauge& up = r.gauge("sessions", "Open \\ sessions\nnow.", {{"direction", "in\"bound"}});
  Gauge& down = r.gauge("sessions", "Open \\ sessions\nnow.", {{"direction", "outbound"}});
  c.inc();
  c.inc(41);
  up.add(5);
  up.sub(2);
  down.set(-7);
  EXPECT_EQ(r.render(),
            "# HELP x_total Things counted.\n"
            "# TYPE x_total counter\n"
            "x_total 42\n"
            "# HELP sessions Open \\\\ sessions\\nnow.\n"
            "# TYPE sessions gauge\n"
            "sessions{direction=\"in\\\"bound\"} 3\n"
            "sessions{direction=\"outbound\"} -7\n");
}

TEST(Metrics, HistogramExpositionIsCumulative) {
  Registry r;
  Histogram& h = r.histogram("sync_seconds", "Sync time.", {0.001, 0.01, 0.1}, {{"disk", "a"}});
  h.observe(0.0005);
  h.observe(0.001);  // le is inclusive
  h.observe(0.05);
  h.observe(3.0);
  EXPECT_EQ(r.render(),
            "# HELP sync_seconds Sync time.\n"
            "# TYPE sync_seconds histogram\n"
            "sync_seconds_bucket{disk=\"a\",le=\"0.001\"} 2\n"
            "sync_seconds_bucket{disk=\"a\",le=\"0.01\"} 2\n"
            "sync_seconds_bucket{disk=\"a\",le=\"0.1\"} 3\n"
            "sync_seconds_bucket{disk=\"a\",le=\"+Inf\"} 4\n"
            "sync_seconds_sum{disk=\"a\"} 3.0515\n"
            "sync_seconds_count{disk=\"a\"} 4\n");
}

TEST(Metrics, SameSeriesTwiceIsTheSameObject) {
  Registry r;
  Counter& a = r.counter("x_total", "h", {{"k", "v"}});
  Counter& b = r.counter("x_total", "h", {{"k", "v"}});
  Counter& other = r.counter("x_total", "h", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &other);
}

TEST(Metrics, RegistrationRefusesMistakes) {
  Registry r;
  r.counter("x_total", "h", {{"k", "v"}});
  EXPECT_THROW(r.gauge("x_total", "h"), std::invalid_argument);                     // other type
  EXPECT_THROW(r.counter("x_total", "other help"), std::invalid_argument);          // other help
  EXPECT_THROW(r.counter("x_total", "h", {{"j", "v"}}), std::invalid_argument);     // other label names
  EXPECT_THROW(r.counter("bad-name", "h"), std::invalid_argument);
  EXPECT_THROW(r.counter("y_total", "h", {{"__k", "v"}}), std::invalid_argument);
  EXPECT_THROW(r.counter("y_total", "h", {{"k", "v"}, {"k", "w"}}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h1", "h", {}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h2", "h", {1, 1}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h3", "h", {2, 1}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h4", "h", {1}, {{"le", "x"}}), std::invalid_argument);
  r.histogram("h5", "h", {1, 2}, {{"k", "a"}});
  EXPECT_THROW(r.histogram("h5", "h", {1, 3}, {{"k", "b"}}), std::invalid_argument);  // other buckets
}

TEST(Metrics, CardinalityIsBounded) {
  Registry r;
  for (size_t i = 0; i < kMaxSeriesPerFamily; ++i) r.counter("per_x_total", "h", {{"x", std::to_string(i)}});
  EXPECT_THROW(r.counter("per_x_total", "h", {{"x", "one-too-many"}}), std::invalid_argument);
}

TEST(Metrics, ExponentialBuckets) {
  EXPECT_EQ(exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_THROW(exponential_buckets(0, 2, 4), std::invalid_argument);
}

TEST(Metrics, ConcurrentUpdatesAreExactAndRenderIsSafe) {
  Registry r;
  Counter& c = r.counter("c_total", "h");
  Gauge& g = r.gauge("g", "h");
  Histogram& h = r.histogram("h_seconds", "h", {0.5});
  constexpr int kThreads = 4, kPerThread = 50'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        g.add(1);
        h.observe(t % 2 ? 1.0 : 0.25);
      }
    });
  std::string scratch;
  for (int i = 0; i < 50; ++i) {
    scratch.clear();
    r.render(scratch);  // concurrently with the updates
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(g.value(), int64_t{kThreads} * kPerThread);
  Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.cumulative[0], uint64_t{kThreads / 2} * kPerThread);
  EXPECT_EQ(s.cumulative[1], uint64_t{kThreads} * kPerThread);
  EXPECT_DOUBLE_EQ(s.sum, (kThreads / 2) * kPerThread * 1.25);
}

TEST(Metrics, RelayMetricsRegistersTheDocumentedNames) {
  Registry r;
  RelayMetrics m(r);
  m.received.inc();
  m.bounced.inc(2);
  m.queue_recipients[3]->set(9);
  m.spool_sync_seconds.observe(0.002);
  std::string text = r.render();
  for (std::string_view line :
       {"ringmail_messages_received_total 1\n", "ringmail_recipients_total{outcome=\"bounced\"} 2\n",
        "ringmail_recipients_total{outcome=\"delivered\"} 0\n", "ringmail_queue_recipients{state=\"suspended\"} 9\n",
        "ringmail_queues{state=\"unreachable\"} 0\n", "ringmail_sessions_open{direction=\"outbound\"} 0\n",
        "ringmail_dns_cache_lookups_total{result=\"miss\"} 0\n", "ringmail_spool_bytes 0\n",
        "ringmail_spool_sync_seconds_count 1\n", "# TYPE ringmail_spool_sync_seconds histogram\n",
        "ringmail_tls_handshakes_total{direction=\"inbound\"} 0\n",
        "ringmail_tls_resumed_total{direction=\"outbound\"} 0\n",
        "ringmail_tls_failures_total{direction=\"inbound\"} 0\n",
        "ringmail_auth_attempts_total{result=\"failed\"} 0\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line;
}

}  // namespace
}  // namespace ringmail::metrics
