#include "bench/failover_report.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>

namespace ftd::bench {

using Json = nlohmann::json;

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string l;
  std::getline(in, l);
  return l;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return -1;
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

const std::vector<std::string>& summary_metrics() {
  static const std::vector<std::string> m{
      "detect_ms",        "arbitrate_ms",        "activate_ms",
      "activation_us_ms", "kill_to_active_ms",   "record_outage_ms",
      "ping_outage_ms",   "ping_longest_gap_ms", "pair_start_s"};
  return m;
}

Json summarize(const Json& runs) {
  Json s = Json::object();
  for (const std::string& m : summary_metrics()) {
    std::vector<double> v;  // runs that measured the step (negative: not seen)
    for (const Json& r : runs)
      if (r.contains(m) && r[m].get<double>() >= 0) v.push_back(r[m].get<double>());
    s[m] = {{"n", v.size()},
            {"p50", percentile(v, 50)},
            {"p99", percentile(v, 99)},
            {"max", v.empty() ? -1.0 : *std::max_element(v.begin(), v.end())}};
  }
  int bad = 0, inactive = 0;
  for (const Json& r : runs) {
    if (!r.value("activated", false)) ++inactive;
    // The verdict's `ok` also covers what lost/duplicated/reordered do not:
    // server counter breaks, replies to unsent numbers, a broken connection.
    if (!r.contains("records") || !r["records"].value("ok", false)) ++bad;
  }
  s["runs"] = runs.size();
  s["runs_not_activated"] = inactive;
  s["runs_records_not_intact"] = bad;
  return s;
}

void write_json(const std::string& path, const Json& doc) {
  std::ofstream(path) << doc.dump(2) << "\n";
}

}  // namespace ftd::bench
