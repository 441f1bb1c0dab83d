// What both sides of migrate_bench (ftd's planned migration, QEMU's live
// migration) measure the same way: the client-visible gap in the guest's
// ping replies around each migration, and per-metric p50/p99 over runs.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/e2e/client_probes.h"

namespace ftd::bench {

// Longest silence between consecutive ping replies that overlaps
// [from_unix_s, to_unix_s] (ms), i.e. the outage a pinging client saw
// around that interval; -1 without a reply on both sides of it.
double reply_gap_ms(const testing::PingReport& report, double from_unix_s, double to_unix_s);

// Sets "client_gap_ms" of every run from its "t_start_unix_s" / "t_end_unix_s".
void add_client_gaps(nlohmann::json& runs, const testing::PingReport& report);

// {n, p50, p99, max} of `key` over the runs that measured it (value >= 0).
nlohmann::json spread(const nlohmann::json& runs, const std::string& key);

}  // namespace ftd::bench
