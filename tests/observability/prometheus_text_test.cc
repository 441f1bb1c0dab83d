// The Prometheus text renderer and the per-VM families built from a status
// snapshot. (The system test parses a live daemon's output with
// prometheus_client; these pin the exact text.)
#include "observability/prometheus_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "observability/vm_metrics.h"

namespace ftd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(PrometheusText, GaugeAndCounterWithHelpTypeAndLabels) {
  MetricFamily g{"ftd_lag_seconds", "Age of the oldest unacked checkpoint.",
                 MetricFamily::Type::kGauge};
  g.gauge({{"vm", "web1"}}, 0.25);
  MetricFamily c{"ftd_checkpoints", "Checkpoints.", MetricFamily::Type::kCounter};
  c.counter({{"vm", "web1"}}, 1234);
  EXPECT_EQ(render_prometheus({g, c}),
            "# HELP ftd_lag_seconds Age of the oldest unacked checkpoint.\n"
            "# TYPE ftd_lag_seconds gauge\n"
            "ftd_lag_seconds{vm=\"web1\"} 0.25\n"
            "# HELP ftd_checkpoints_total Checkpoints.\n"
            "# TYPE ftd_checkpoints_total counter\n"
            "ftd_checkpoints_total{vm=\"web1\"} 1234\n");
}

TEST(PrometheusText, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricFamily h{"ftd_pause_seconds", "Pause.", MetricFamily::Type::kHistogram};
  const double bounds[] = {0.001, 0.01};
  const double counts[] = {3, 2, 1};  // <=1ms, (1ms,10ms], above
  h.histogram({{"vm", "a"}}, bounds, counts, 0.5);
  EXPECT_EQ(render_prometheus({h}),
            "# HELP ftd_pause_seconds Pause.\n"
            "# TYPE ftd_pause_seconds histogram\n"
            "ftd_pause_seconds_bucket{vm=\"a\",le=\"0.001\"} 3\n"
            "ftd_pause_seconds_bucket{vm=\"a\",le=\"0.01\"} 5\n"
            "ftd_pause_seconds_bucket{vm=\"a\",le=\"+Inf\"} 6\n"
            "ftd_pause_seconds_sum{vm=\"a\"} 0.5\n"
            "ftd_pause_seconds_count{vm=\"a\"} 6\n");
}

TEST(PrometheusText, EscapesLabelValuesAndHelp) {
  MetricFamily g{"m", "line1\nback\\slash", MetricFamily::Type::kGauge};
  g.gauge({{"peer", "a\"b\\c\nd"}}, 1);
  EXPECT_EQ(render_prometheus({g}),
            "# HELP m line1\\nback\\\\slash\n# TYPE m gauge\n"
            "m{peer=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(PrometheusText, NonFiniteValuesAndEmptyFamilies) {
  MetricFamily g{"m", "h", MetricFamily::Type::kGauge};
  g.gauge({}, std::numeric_limits<double>::infinity());
  g.gauge({{"x", "1"}}, std::numeric_limits<double>::quiet_NaN());
  MetricFamily empty{"nothing", "h", MetricFamily::Type::kCounter};
  const std::string text = render_prometheus({g, empty});
  EXPECT_THAT(text, HasSubstr("m +Inf\n"));
  EXPECT_THAT(text, HasSubstr("m{x=\"1\"} NaN\n"));
  EXPECT_THAT(text, Not(HasSubstr("nothing")));
}

v1::StatusReply pair_snapshot() {
  v1::StatusReply r;
  auto* p = r.add_vms();
  p->set_name("web1");
  p->set_role("primary");
  p->set_engine("synthetic");
  p->set_state(v1::VM_STATE_PROTECTED);
  p->set_peer("127.0.0.1:7400");
  p->set_epoch_policy("output-driven");
  p->set_checkpoints_total(42);
  p->set_lag_ms(12.5);
  p->set_output_held(3);
  auto* h = p->mutable_pause_histogram();
  h->add_upper_bounds_us(1000);
  h->add_counts(40);
  h->add_counts(2);
  h->set_sum_us(9000);
  h->set_count(42);
  auto* s = r.add_vms();
  s->set_name("db1");
  s->set_role("secondary");
  s->set_state(v1::VM_STATE_WAITING);
  s->set_checkpoints_total(7);
  return r;
}

TEST(VmMetrics, RendersTheSnapshotPerVm) {
  const EventCounts events{{{"db1", "failover.done"}, 1}, {{"web1", "vm.state"}, 4}};
  const std::string text = render_prometheus(vm_metric_families(pair_snapshot(), events));
  for (const char* line : {
           "ftd_checkpoints_total{vm=\"web1\"} 42\n",
           "ftd_checkpoints_total{vm=\"db1\"} 7\n",
           "ftd_lag_seconds{vm=\"web1\"} 0.0125\n",
           "ftd_output_held{vm=\"web1\"} 3\n",
           "ftd_vm_state{vm=\"web1\",state=\"protected\"} 1\n",
           "ftd_vm_state{vm=\"web1\",state=\"degraded\"} 0\n",
           "ftd_vm_state{vm=\"db1\",state=\"waiting\"} 1\n",
           "ftd_vm_info{vm=\"web1\",role=\"primary\",engine=\"synthetic\","
           "state=\"protected\",peer=\"127.0.0.1:7400\",epoch_policy=\"output-driven\"} 1\n",
           "ftd_pause_seconds_bucket{vm=\"web1\",le=\"0.001\"} 40\n",
           "ftd_pause_seconds_bucket{vm=\"web1\",le=\"+Inf\"} 42\n",
           "ftd_pause_seconds_sum{vm=\"web1\"} 0.009\n",
           "ftd_failovers_total{vm=\"db1\"} 1\n",
           "ftd_failovers_total{vm=\"web1\"} 0\n",
           "ftd_events_total{vm=\"web1\",event=\"vm.state\"} 4\n",
       })
    EXPECT_THAT(text, HasSubstr(line));
  // A secondary has no pause, lag or held output: no misleading zeros.
  EXPECT_THAT(text, Not(HasSubstr("ftd_lag_seconds{vm=\"db1\"}")));
  EXPECT_THAT(text, Not(HasSubstr("ftd_pause_seconds_count{vm=\"db1\"}")));
}

}  // namespace
}  // namespace ftd
