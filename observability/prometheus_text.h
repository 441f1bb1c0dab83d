// The Prometheus text exposition format (version 0.0.4): metric families
// with HELP/TYPE lines, escaped label values, histograms as cumulative
// `_bucket{le=...}` + `_sum` + `_count`. No client library in Debian 12
// renders it for C++ (prometheus-cpp is not packaged), and the format is a
// few lines of text; the tests parse the output with prometheus_client.
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ftd {

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Sample {
  std::string suffix;  // "", "_bucket", "_sum", "_count", "_total"
  Labels labels;
  double value = 0;
};

struct MetricFamily {
  enum class Type { kGauge, kCounter, kHistogram };
  std::string name;  // counters: without "_total" (rendering adds it)
  std::string help;
  Type type = Type::kGauge;
  std::vector<Sample> samples;

  void gauge(Labels labels, double value) { samples.push_back({"", std::move(labels), value}); }
  void counter(Labels labels, double value) {
    samples.push_back({"_total", std::move(labels), value});
  }
  // `counts[i]`: observations in (bounds[i-1], bounds[i]]; counts has one
  // more entry than bounds (above the last bound). Rendered cumulative.
  void histogram(const Labels& labels, std::span<const double> bounds,
                 std::span<const double> counts, double sum);
};

std::string render_prometheus(const std::vector<MetricFamily>& families);

// The content type scrapers expect for render_prometheus's output.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace ftd
