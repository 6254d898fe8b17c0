// Registration checks and the Prometheus text rendering of the registry (see metrics.h).
#include "common/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ringmail::metrics {
namespace {

enum Type : int { kCounter = 0, kGauge = 1, kHistogram = 2 };
constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};

[[noreturn]] void refuse(const std::string& why) { throw std::invalid_argument("metrics: " + why); }

void append_escaped(std::string& out, std::string_view s, bool quotes) {
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (quotes && c == '"') out += "\\\"";
    else out += c;
  }
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) out += "NaN";
  else if (std::isinf(v)) out += v > 0 ? "+Inf" : "-Inf";
  else fmt::format_to(std::back_inserter(out), "{}", v);
}

// `{a="x",b="y"}` with an optional extra pair (the histogram's le); nothing when both are empty.
void append_labels(std::string& out, const Labels& labels, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    append_escaped(out, v, true);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

}  // namespace

bool valid_metric_name(std::string_view n) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool valid_label_name(std::string_view n) {
  if (n.empty() || n.starts_with("__")) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// ---- Histogram ----------------------------------------------------------------------------

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  if (bounds_.empty() || bounds_.size() > kMaxBuckets)
    refuse(fmt::format("a histogram needs 1 to {} buckets, not {}", kMaxBuckets, bounds_.size()));
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i])) refuse("histogram bucket bounds must be finite (+Inf is implicit)");
    if (i > 0 && !(bounds_[i - 1] < bounds_[i])) refuse("histogram bucket bounds must be strictly ascending");
  }
  cells_ = std::make_unique<Cell[]>(bounds_.size() + 1);
}

void Histogram::observe(double v) {
  // Bucket i counts v <= bounds_[i]; NaN and values above every bound land in +Inf.
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  cells_[i].count.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += cells_[i].count.load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> exponential_buckets(double start, double factor, size_t count) {
  if (!(start > 0) || !(factor > 1) || count == 0) refuse("exponential_buckets needs start > 0, factor > 1, count > 0");
  std::vector<double> b;
  b.reserve(count);
  for (double v = start; b.size() < count; v *= factor) b.push_back(v);
  return b;
}

// ---- Registry -----------------------------------------------------------------------------

struct Registry::Family {
  struct Series {
    Labels labels;                         // as registered
    std::unique_ptr<Counter> counter;      // set for counters
    std::unique_ptr<Gauge> gauge;          // set for gauges
    std::unique_ptr<Histogram> histogram;  // set for histograms
  };
  std::string name;                  // metric name
  std::string help;                  // HELP text
  int type = kCounter;               // Type
  std::vector<double> bounds;        // histogram layout, the same for every series
  std::vector<Series> series;        // at most kMaxSeriesPerFamily

  Series* find(const Labels& labels) {
    for (Series& s : series)
      if (s.labels == labels) return &s;
    return nullptr;
  }
  Series& add(const Labels& labels) {
    if (series.size() >= kMaxSeriesPerFamily)
      refuse(fmt::format("{} already has {} series; label values must come from a small fixed set", name,
                         kMaxSeriesPerFamily));
    for (size_t i = 0; i < labels.size(); ++i) {
      if (!valid_label_name(labels[i].first)) refuse(fmt::format("{}: bad label name \"{}\"", name, labels[i].first));
      if (type == kHistogram && labels[i].first == "le") refuse(fmt::format("{}: \"le\" is reserved", name));
      for (size_t j = 0; j < i; ++j)
        if (labels[j].first == labels[i].first) refuse(fmt::format("{}: label \"{}\" twice", name, labels[i].first));
    }
    if (!series.empty()) {
      // Every series of a family has the same label names (Prometheus would accept otherwise,
      // but queries get confusing): compare with the first.
      const Labels& first = series.front().labels;
      bool same = first.size() == labels.size();
      for (size_t i = 0; same && i < labels.size(); ++i) same = first[i].first == labels[i].first;
      if (!same) refuse(fmt::format("{}: every series must have the same label names", name));
    }
    series.push_back(Series{labels, nullptr, nullptr, nullptr});
    return series.back();
  }
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Family& Registry::family(std::string_view name, std::string_view help, int type) {
  if (!valid_metric_name(name)) refuse(fmt::format("bad metric name \"{}\"", name));
  for (auto& f : families_) {
    if (f->name != name) continue;
    if (f->type != type)
      refuse(fmt::format("{} is already registered as a {}", name, kTypeNames[f->type]));
    if (f->help != help) refuse(fmt::format("{} is already registered with other help text", name));
    return *f;
  }
  auto f = std::make_unique<Family>();
  f->name = std::string(name);
  f->help = std::string(help);
  f->type = type;
  families_.push_back(std::move(f));
  return *families_.back();
}

Counter& Registry::counter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, kCounter);
  if (Family::Series* s = f.find(labels)) return *s->counter;
  Family::Series& s = f.add(labels);
  s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, kGauge);
  if (Family::Series* s = f.find(labels)) return *s->gauge;
  Family::Series& s = f.add(labels);
  s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help, std::vector<double> upper_bounds,
                               const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, kHistogram);
  if (f.series.empty()) f.bounds = upper_bounds;
  else if (f.bounds != upper_bounds) refuse(fmt::format("{}: every series must have the same buckets", name));
  if (Family::Series* s = f.find(labels)) return *s->histogram;
  auto h = std::make_unique<Histogram>(std::move(upper_bounds));  // checks the bounds before adding
  Family::Series& s = f.add(labels);
  s.histogram = std::move(h);
  return *s.histogram;
}

void Registry::render(std::string& out) const {
  std::lock_guard lock(mutex_);
  for (const auto& f : families_) {
    if (f->series.empty()) continue;
    out += "# HELP ";
    out += f->name;
    out += ' ';
    append_escaped(out, f->help, false);
    out += "\n# TYPE ";
    out += f->name;
    out += ' ';
    out += kTypeNames[f->type];
    out += '\n';
    for (const Family::Series& s : f->series) {
      if (f->type == kCounter || f->type == kGauge) {
        out += f->name;
        append_labels(out, s.labels);
        if (f->type == kCounter) fmt::format_to(std::back_inserter(out), " {}\n", s.counter->value());
        else fmt::format_to(std::back_inserter(out), " {}\n", s.gauge->value());
        continue;
      }
      Histogram::Snapshot snap = s.histogram->snapshot();
      std::string le;
      for (size_t i = 0; i <= snap.upper_bounds.size(); ++i) {
        le.clear();
        if (i < snap.upper_bounds.size()) append_number(le, snap.upper_bounds[i]);
        else le = "+Inf";
        out += f->name;
        out += "_bucket";
        append_labels(out, s.labels, "le", le);
        fmt::format_to(std::back_inserter(out), " {}\n", snap.cumulative[i]);
      }
      out += f->name;
      out += "_sum";
      append_labels(out, s.labels);
      out += ' ';
      append_number(out, snap.sum);
      out += '\n';
      out += f->name;
      out += "_count";
      append_labels(out, s.labels);
      fmt::format_to(std::back_inserter(out), " {}\n", snap.cumulative.back());  // equals the +Inf bucket
    }
  }
}

std::string Registry::render() const {
  std::string out;
  render(out);
  return out;
}

// ---- RelayMetrics -------------------------------------------------------------------------

namespace {
constexpr std::string_view kRcptHelp = "Recipients by final or interim outcome of a delivery attempt.";
constexpr std::string_view kQueueRcptHelp = "Recipients waiting in next-hop queues, by queue state.";
constexpr std::string_view kQueuesHelp = "Next-hop queues, by state.";
constexpr std::string_view kSessionsHelp = "SMTP sessions open now.";
constexpr std::string_view kDnsHelp = "Resolver cache lookups, by result.";
constexpr std::string_view kTlsHelp = "STARTTLS handshakes completed, by direction.";
constexpr std::string_view kTlsResumedHelp = "STARTTLS handshakes that resumed an earlier session, by direction.";
constexpr std::string_view kTlsFailHelp = "STARTTLS handshakes that failed or timed out, by direction.";
constexpr std::string_view kAuthHelp = "AUTH attempts of submission clients, by result.";
}  // namespace

RelayMetrics::RelayMetrics(Registry& r)
    : received(r.counter("ringmail_messages_received_total", "Messages accepted (250 after the spool sync).")),
      delivered(r.counter("ringmail_recipients_total", kRcptHelp, {{"outcome", "delivered"}})),
      deferred(r.counter("ringmail_recipients_total", kRcptHelp, {{"outcome", "deferred"}})),
      bounced(r.counter("ringmail_recipients_total", kRcptHelp, {{"outcome", "bounced"}})),
      expired(r.counter("ringmail_recipients_total", kRcptHelp, {{"outcome", "expired"}})),
      dsn_sent(r.counter("ringmail_dsn_generated_total", "Delivery status notifications queued.")),
      queue_recipients{},
      queue_count{},
      sessions_inbound(r.gauge("ringmail_sessions_open", kSessionsHelp, {{"direction", "inbound"}})),
      sessions_outbound(r.gauge("ringmail_sessions_open", kSessionsHelp, {{"direction", "outbound"}})),
      dns_cache_hits(r.counter("ringmail_dns_cache_lookups_total", kDnsHelp, {{"result", "hit"}})),
      dns_cache_misses(r.counter("ringmail_dns_cache_lookups_total", kDnsHelp, {{"result", "miss"}})),
      spool_bytes(r.gauge("ringmail_spool_bytes", "Bytes in live spool segments.")),
      spool_sync_seconds(r.histogram("ringmail_spool_sync_seconds", "Duration of one group-commit fdatasync.",
                                     exponential_buckets(0.0001, 2, 16))),
      tls_handshakes_in(r.counter("ringmail_tls_handshakes_total", kTlsHelp, {{"direction", "inbound"}})),
      tls_handshakes_out(r.counter("ringmail_tls_handshakes_total", kTlsHelp, {{"direction", "outbound"}})),
      tls_resumed_in(r.counter("ringmail_tls_resumed_total", kTlsResumedHelp, {{"direction", "inbound"}})),
      tls_resumed_out(r.counter("ringmail_tls_resumed_total", kTlsResumedHelp, {{"direction", "outbound"}})),
      tls_failures_in(r.counter("ringmail_tls_failures_total", kTlsFailHelp, {{"direction", "inbound"}})),
      auth_ok(r.counter("ringmail_auth_attempts_total", kAuthHelp, {{"result", "ok"}})),
      auth_failed(r.counter("ringmail_auth_attempts_total", kAuthHelp, {{"result", "failed"}})) {
  for (size_t i = 0; i < kQueueStates; ++i) {
    queue_recipients[i] = &r.gauge("ringmail_queue_recipients", kQueueRcptHelp, {{"state", kQueueStateLabels[i]}});
    queue_count[i] = &r.gauge("ringmail_queues", kQueuesHelp, {{"state", kQueueStateLabels[i]}});
  }
}

}  // namespace ringmail::metrics
