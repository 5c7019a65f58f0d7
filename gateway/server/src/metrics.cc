#include "caregate/server/metrics.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "caregate/core/error.h"

namespace caregate::server {

namespace {

bool ValidName(std::string_view s, bool allow_colon) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':') ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void AppendEscaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote) out += "\\\"";
    else out += c;
  }
}

std::string FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

}  // namespace

MetricHistogram::MetricHistogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void MetricHistogram::Observe(double v) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);  // first bound >= v: `le`
  counts_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<double> Metrics::LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Metrics::Series& Metrics::Find(std::string_view name, std::string_view help, Type type, const Labels& labels,
                               const std::vector<double>* buckets) {
  std::string rendered;
  for (const auto& [k, v] : labels) {
    if (!ValidName(k, false) || k.starts_with("__") || (type == Type::kHistogram && k == "le"))
      throw FatalError(caregate::Problem::kUsage, fmt::format("metric {}: invalid label name `{}`", name, k));
    if (!rendered.empty()) rendered += ',';
    rendered += k;
    rendered += "=\"";
    AppendEscaped(rendered, v, true);
    rendered += '"';
  }
  std::lock_guard lock(mutex_);
  auto fit = families_.find(name);
  if (fit == families_.end()) {
    if (!ValidName(name, true))
      throw FatalError(caregate::Problem::kUsage, fmt::format("invalid metric name `{}`", name));
    if (buckets != nullptr &&
        (buckets->empty() || !std::is_sorted(buckets->begin(), buckets->end()) ||
         std::adjacent_find(buckets->begin(), buckets->end()) != buckets->end() ||
         std::any_of(buckets->begin(), buckets->end(), [](double b) { return !std::isfinite(b); })))
      throw FatalError(caregate::Problem::kUsage,
                       fmt::format("metric {}: buckets must be finite and strictly ascending", name));
    Family f{type, std::string(help), buckets ? *buckets : std::vector<double>{}, {}, {}};
    fit = families_.emplace(std::string(name), std::move(f)).first;
  }
  Family& f = fit->second;
  if (f.type != type || f.help != help || (buckets != nullptr && f.buckets != *buckets))
    throw FatalError(caregate::Problem::kUsage,
                     fmt::format("metric {} is already registered with another type, help or buckets", name));
  auto sit = f.index.find(rendered);
  if (sit != f.index.end()) return f.series[sit->second];
  Series s;
  s.labels = rendered;
  switch (type) {
    case Type::kCounter: s.counter = &counters_.emplace_back(); break;
    case Type::kGauge: s.gauge = &gauges_.emplace_back(); break;
    case Type::kHistogram: s.histogram = &histograms_.emplace_back(f.buckets); break;
  }
  f.index.emplace(std::move(rendered), f.series.size());
  f.series.push_back(std::move(s));
  return f.series.back();
}

MetricCounter& Metrics::Counter(std::string_view name, std::string_view help, const Labels& labels) {
  return *Find(name, help, Type::kCounter, labels, nullptr).counter;
}

MetricGauge& Metrics::Gauge(std::string_view name, std::string_view help, const Labels& labels) {
  return *Find(name, help, Type::kGauge, labels, nullptr).gauge;
}

MetricHistogram& Metrics::Histogram(std::string_view name, std::string_view help, const Labels& labels,
                                    std::vector<double> buckets) {
  return *Find(name, help, Type::kHistogram, labels, &buckets).histogram;
}

std::string Metrics::Render() const {
  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& [name, f] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    AppendEscaped(out, f.help, false);
    out += "\n# TYPE ";
    out += name;
    out += f.type == Type::kCounter ? " counter\n" : f.type == Type::kGauge ? " gauge\n" : " histogram\n";
    for (const Series& s : f.series) {
      const std::string braces = s.labels.empty() ? std::string() : "{" + s.labels + "}";
      if (s.counter != nullptr) {
        fmt::format_to(std::back_inserter(out), "{}{} {}\n", name, braces, s.counter->value());
      } else if (s.gauge != nullptr) {
        fmt::format_to(std::back_inserter(out), "{}{} {}\n", name, braces, FormatDouble(s.gauge->value()));
      } else {
        const MetricHistogram& h = *s.histogram;
        const std::string sep = s.labels.empty() ? std::string() : s.labels + ",";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i <= h.bounds().size(); ++i) {
          cumulative += h.bucket(i);
          const std::string le = i < h.bounds().size() ? FormatDouble(h.bounds()[i]) : std::string("+Inf");
          fmt::format_to(std::back_inserter(out), "{}_bucket{{{}le=\"{}\"}} {}\n", name, sep, le, cumulative);
        }
        fmt::format_to(std::back_inserter(out), "{}_sum{} {}\n", name, braces, FormatDouble(h.sum()));
        fmt::format_to(std::back_inserter(out), "{}_count{} {}\n", name, braces, cumulative);
      }
    }
  }
  return out;
}

}  // namespace caregate::server
