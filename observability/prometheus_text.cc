#include "observability/prometheus_text.h"

#include <fmt/format.h>

#include <cmath>

namespace ftd {
namespace {

std::string escape(std::string_view s, bool quotes) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && quotes)
      out += "\\\"";
    else
      out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

const char* type_name(MetricFamily::Type t) {
  switch (t) {
    case MetricFamily::Type::kCounter:
      return "counter";
    case MetricFamily::Type::kHistogram:
      return "histogram";
    case MetricFamily::Type::kGauge:
      break;
  }
  return "gauge";
}

}  // namespace

void MetricFamily::histogram(const Labels& labels, std::span<const double> bounds,
                             std::span<const double> counts, double sum) {
  double cumulative = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    Labels with_le = labels;
    with_le.emplace_back("le", i < bounds.size() ? number(bounds[i]) : "+Inf");
    samples.push_back({"_bucket", std::move(with_le), cumulative});
  }
  samples.push_back({"_sum", labels, sum});
  samples.push_back({"_count", labels, cumulative});
}

std::string render_prometheus(const std::vector<MetricFamily>& families) {
  std::string out;
  for (const auto& f : families) {
    if (f.samples.empty()) continue;  // a family with no sample says nothing
    // Text format 0.0.4: a counter's family is named with its "_total" (as
    // client_golang writes it); parsers drop samples that do not match it.
    const std::string family = f.type == MetricFamily::Type::kCounter ? f.name + "_total" : f.name;
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family, escape(f.help, false), family,
                       type_name(f.type));
    for (const auto& s : f.samples) {
      out += f.name;
      out += s.suffix;
      if (!s.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < s.labels.size(); ++i)
          out += fmt::format("{}{}=\"{}\"", i ? "," : "", s.labels[i].first,
                             escape(s.labels[i].second, true));
        out += '}';
      }
      out += ' ';
      out += number(s.value);
      out += '\n';
    }
  }
  return out;
}

}  // namespace ftd
