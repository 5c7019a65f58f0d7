#pragma once
// Prometheus metrics: a registry of counters, gauges and histograms rendered in the
// text exposition format (version 0.0.4). Registering takes a lock; updating a metric
// is a relaxed atomic operation, so hot paths should keep the reference they got.
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace caregate::server {

using Labels = std::vector<std::pair<std::string, std::string>>;

class MetricCounter {
 public:
  void Inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class MetricGauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class MetricHistogram {
 public:
  explicit MetricHistogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Non-cumulative count of bucket i (i == bounds().size() is the +Inf bucket).
  std::uint64_t bucket(std::size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;  // ascending upper bounds, +Inf implied
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

class Metrics {
 public:
  // Seconds, for request and write latencies: 100 us .. 10 s.
  static std::vector<double> LatencyBuckets();

  // Returns the series `name{labels}`, creating it on first use; the reference stays
  // valid as long as the registry. The same name must always be used with the same type
  // (and, for histograms, the same buckets) and the same help; names and label names
  // must be valid Prometheus identifiers. Violations throw FatalError(kUsage).
  MetricCounter& Counter(std::string_view name, std::string_view help, const Labels& labels = {});
  MetricGauge& Gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  MetricHistogram& Histogram(std::string_view name, std::string_view help, const Labels& labels = {},
                             std::vector<double> buckets = LatencyBuckets());

  // The whole registry in text exposition format; families sorted by name, series in
  // registration order.
  std::string Render() const;

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    std::string labels;  // rendered `a="x",b="y"` (escaped), "" when none
    MetricCounter* counter = nullptr;
    MetricGauge* gauge = nullptr;
    MetricHistogram* histogram = nullptr;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> buckets;
    std::vector<Series> series;
    std::map<std::string, std::size_t, std::less<>> index;  // labels -> series
  };
  Series& Find(std::string_view name, std::string_view help, Type type, const Labels& labels,
               const std::vector<double>* buckets);

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;
  std::deque<MetricCounter> counters_;
  std::deque<MetricGauge> gauges_;
  std::deque<MetricHistogram> histograms_;
};

}  // namespace caregate::server
