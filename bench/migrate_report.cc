#include "bench/migrate_report.h"

#include <algorithm>

#include "bench/failover_report.h"

namespace ftd::bench {

using Json = nlohmann::json;

double reply_gap_ms(const testing::PingReport& report, double from_unix_s, double to_unix_s) {
  std::vector<double> at;
  for (const auto& r : report.replies) at.push_back(r.unix_s);
  std::sort(at.begin(), at.end());
  double gap = -1;
  for (size_t i = 1; i < at.size(); ++i)
    if (at[i] > from_unix_s && at[i - 1] < to_unix_s)
      gap = std::max(gap, (at[i] - at[i - 1]) * 1e3);
  const bool before = !at.empty() && at.front() <= from_unix_s;
  const bool after = !at.empty() && at.back() >= to_unix_s;
  return before && after ? gap : -1;
}

void add_client_gaps(Json& runs, const testing::PingReport& report) {
  for (Json& r : runs)
    if (r.contains("t_start_unix_s") && r.contains("t_end_unix_s"))
      r["client_gap_ms"] =
          reply_gap_ms(report, r["t_start_unix_s"].get<double>(), r["t_end_unix_s"].get<double>());
}

Json spread(const Json& runs, const std::string& key) {
  std::vector<double> v;
  for (const Json& r : runs)
    if (r.contains(key) && r[key].is_number() && r[key].get<double>() >= 0)
      v.push_back(r[key].get<double>());
  return {{"n", v.size()},
          {"p50", percentile(v, 50)},
          {"p99", percentile(v, 99)},
          {"max", v.empty() ? -1.0 : *std::max_element(v.begin(), v.end())}};
}

}  // namespace ftd::bench
