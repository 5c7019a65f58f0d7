#include "caregate/server/metrics.h"

#include <gtest/gtest.h>

#include <thread>

#include "caregate/core/error.h"

namespace caregate::server {
namespace {

bool Contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

TEST(Metrics, RendersCounterGaugeAndHistogram) {
  Metrics m;
  m.Counter("caregate_records_stored_total", "Records stored", {{"system", "cis"}}).Inc(3);
  m.Counter("caregate_records_stored_total", "Records stored", {{"system", "systmone"}}).Inc();
  m.Gauge("caregate_queue_depth", "Items waiting").Set(2.5);
  auto& h = m.Histogram("caregate_audit_write_seconds", "Audit write latency", {}, {1, 2.5});
  h.Observe(0.5);
  h.Observe(1);  // le is inclusive
  h.Observe(2);
  h.Observe(4);
  const std::string text = m.Render();
  EXPECT_TRUE(Contains(text, "# HELP caregate_records_stored_total Records stored\n"
                             "# TYPE caregate_records_stored_total counter\n"
                             "caregate_records_stored_total{system=\"cis\"} 3\n"
                             "caregate_records_stored_total{system=\"systmone\"} 1\n"))
      << text;
  EXPECT_TRUE(Contains(text, "# TYPE caregate_queue_depth gauge\ncaregate_queue_depth 2.5\n")) << text;
  EXPECT_TRUE(Contains(text, "# TYPE caregate_audit_write_seconds histogram\n"
                             "caregate_audit_write_seconds_bucket{le=\"1\"} 2\n"
                             "caregate_audit_write_seconds_bucket{le=\"2.5\"} 3\n"
                             "caregate_audit_write_seconds_bucket{le=\"+Inf\"} 4\n"
                             "caregate_audit_write_seconds_sum 7.5\n"
                             "caregate_audit_write_seconds_count 4\n"))
      << text;
  // Families are sorted by name.
  EXPECT_LT(text.find("caregate_audit_write_seconds"), text.find("caregate_queue_depth"));
}

TEST(Metrics, HistogramLabelsComeBeforeLe) {
  Metrics m;
  m.Histogram("h_seconds", "h", {{"route", "/v1/persons/{id}"}}, {1}).Observe(0.5);
  EXPECT_TRUE(Contains(m.Render(), "h_seconds_bucket{route=\"/v1/persons/{id}\",le=\"1\"} 1\n")) << m.Render();
}

TEST(Metrics, SameSeriesReturnsSameObject) {
  Metrics m;
  auto& a = m.Counter("c_total", "c", {{"k", "v"}});
  auto& b = m.Counter("c_total", "c", {{"k", "v"}});
  auto& c = m.Counter("c_total", "c", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
}

TEST(Metrics, RejectsInvalidNamesAndClashes) {
  Metrics m;
  m.Counter("c_total", "c");
  EXPECT_THROW(m.Gauge("c_total", "c"), FatalError);            // other type
  EXPECT_THROW(m.Counter("c_total", "other help"), FatalError);  // other help
  EXPECT_THROW(m.Counter("9bad", "x"), FatalError);
  EXPECT_THROW(m.Counter("bad-name", "x"), FatalError);
  EXPECT_THROW(m.Counter("ok", "x", {{"bad label", "v"}}), FatalError);
  EXPECT_THROW(m.Counter("ok2", "x", {{"__reserved", "v"}}), FatalError);
  EXPECT_THROW(m.Histogram("h", "x", {{"le", "1"}}), FatalError);
  EXPECT_THROW(m.Histogram("h2", "x", {}, {2, 1}), FatalError);
  m.Histogram("h3", "x", {}, {1, 2});
  EXPECT_THROW(m.Histogram("h3", "x", {}, {1, 3}), FatalError);
}

TEST(Metrics, EscapesLabelValuesAndHelp) {
  Metrics m;
  m.Counter("c_total", "line1\nback\\slash", {{"v", "a\"b\\c\nd"}}).Inc();
  const std::string text = m.Render();
  EXPECT_TRUE(Contains(text, "# HELP c_total line1\\nback\\\\slash\n")) << text;
  EXPECT_TRUE(Contains(text, "c_total{v=\"a\\\"b\\\\c\\nd\"} 1\n")) << text;
}

TEST(Metrics, UpdatesFromManyThreadsAreCounted) {
  Metrics m;
  auto& c = m.Counter("c_total", "c");
  auto& g = m.Gauge("g", "g");
  auto& h = m.Histogram("h_seconds", "h");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Inc();
        g.Add(1);
        h.Observe(0.002);
        m.Counter("c_total", "c");  // concurrent lookups are fine too
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
  EXPECT_EQ(g.value(), 40000.0);
  EXPECT_EQ(h.count(), 40000u);
}

}  // namespace
}  // namespace caregate::server
