// What the failover bench's modes share when they write results: machine
// load, the date, nearest-rank percentiles per metric over a list of runs,
// and the file write. One place so failover.json and soak.json summarise
// runs the same way.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ftd::bench {

std::string loadavg();  // /proc/loadavg, as is
std::string utc_now();  // 2026-11-24T07:09:00Z

// Nearest rank; -1 for an empty list.
double percentile(std::vector<double> v, double p);

// Per metric of a host-kill run (see bench/README.md): n, p50, p99, max over
// the runs that measured it; plus runs, runs_not_activated and
// runs_records_not_intact (the record client's verdict not ok).
nlohmann::json summarize(const nlohmann::json& runs);

// The metric names summarize() covers, in table order.
const std::vector<std::string>& summary_metrics();

// Rewrites `path` with `doc` (pretty-printed): partial results survive an
// interrupted bench.
void write_json(const std::string& path, const nlohmann::json& doc);

}  // namespace ftd::bench
