#include "bench/failover_consecutive.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "bench/failover_report.h"
#include "bench/failover_run.h"

namespace ftd::bench {
namespace {

using nlohmann::json;

double load1(const std::string& loadavg_line) {
  return loadavg_line.empty() ? -1 : std::stod(loadavg_line);
}

// One row per run: the requested fields first-class, the whole host-kill
// record kept beside them (steps, timestamps, the arbiter's log lines).
json row_of(int index, const Result<json>& r, const std::string& load_before,
            const std::string& logs_dir) {
  json row{{"run", index}, {"loadavg_before", load_before}, {"loadavg_after", loadavg()}};
  if (std::filesystem::exists(logs_dir)) row["logs_kept"] = logs_dir;
  if (!r) {
    // The harness itself failed (pair start, probes): the run counts as failed.
    row["ok"] = false;
    row["activated"] = false;
    row["error"] = r.error().to_string().substr(0, 4000);
    return row;
  }
  const json& rec = (*r)["records"];
  row["ok"] = (*r)["ok"];
  row["activated"] = (*r)["activated"];
  row["kill_to_active_ms"] = (*r)["kill_to_active_ms"];
  row["record_outage_ms"] = (*r)["record_outage_ms"];
  row["records_lost"] = rec["lost"];
  row["records_duplicated"] = rec["duplicated"];
  row["records_reordered"] = rec["reordered"];
  row["records_ok"] = rec["ok"];
  row["detail"] = *r;
  return row;
}

json totals_of(const json& rows) {
  json details = json::array();
  json t{{"runs", rows.size()},
         {"runs_ok", 0},
         {"runs_failed", 0},
         {"harness_errors", 0},
         {"failed_activations", 0},
         {"records_sent", 0},
         {"records_answered_after_outage", 0},
         {"records_lost", 0},
         {"records_duplicated", 0},
         {"records_reordered", 0},
         {"loadavg1_min", -1.0},
         {"loadavg1_max", -1.0}};
  auto add = [&](const std::string& key, const json& v) {
    t[key] = t[key].get<int64_t>() + v.get<int64_t>();
  };
  for (const json& row : rows) {
    const bool ok = row.value("ok", false);
    add(ok ? "runs_ok" : "runs_failed", 1);
    if (row.contains("error")) add("harness_errors", 1);
    for (const char* when : {"loadavg_before", "loadavg_after"}) {
      const double l = load1(row.value(when, ""));
      if (t["loadavg1_min"].get<double>() < 0 || l < t["loadavg1_min"].get<double>())
        t["loadavg1_min"] = l;
      t["loadavg1_max"] = std::max(t["loadavg1_max"].get<double>(), l);
    }
    if (!row.contains("detail")) continue;
    if (!row.value("activated", false)) add("failed_activations", 1);
    const json& rec = row["detail"]["records"];
    add("records_sent", rec["sent"]);
    add("records_answered_after_outage", rec["answered_after_outage"]);
    // -1 (the verdict lacked the field) would hide a loss in a sum.
    for (const char* k : {"lost", "duplicated", "reordered"})
      add(fmt::format("records_{}", k), std::max<int64_t>(rec[k].get<int64_t>(), 0));
    details.push_back(row["detail"]);
  }
  t["metrics"] = summarize(details);
  return t;
}

}  // namespace

json run_consecutive(const ConsecutiveOptions& o) {
  json doc{{"bench", "failover_consecutive"},
           {"issue", 12},
           {"command", o.command},
           {"date", utc_now()},
           {"arbiter", o.arbiter},
           {"what",
            "consecutive host-kill failovers with automatic failover (witness lease 1000 ms, "
            "heartbeat 50 ms x 5) and the live TCP record stream (50 records/s, verified by "
            "ftd-record-client: every number answered exactly once, in order, server counter "
            "consecutive, same connection) plus ping. Each run is a fresh ProtectedPair on "
            "fresh namespaces: re-protection after a failover does not exist yet, so one pair "
            "cannot fail over back and forth. No run is retried; a failed run stays in "
            "`runs`."},
           {"machine",
            {{"nproc", std::thread::hardware_concurrency()},
             {"kvm", ::access("/dev/kvm", F_OK) == 0},
             {"nice", ::nice(0)},
             {"loadavg_at_start", loadavg()}}},
           {"runs", json::array()}};
  for (int i = 0; i < o.runs; ++i) {
    const std::string load = loadavg();
    const std::string logs =
        o.keep_logs_dir.empty() ? "" : fmt::format("{}/run-{:03}", o.keep_logs_dir, i);
    auto r = run_host_kill({.arbiter = o.arbiter, .index = i, .keep_logs_dir = logs});
    json row = row_of(i, r, load, logs);
    if (row.contains("error"))
      fmt::print("run {:2}: FAILED (harness) {}\n", i,
                 row["error"].get<std::string>().substr(0, 2000));
    else
      fmt::print(
          "run {:2}: {} kill->active {:.0f} ms, record outage {:.0f} ms, lost/dup/reord "
          "{}/{}/{}, load {}\n",
          i, row["ok"].get<bool>() ? "ok" : "FAILED", row["kill_to_active_ms"].get<double>(),
          row["record_outage_ms"].get<double>(), row["records_lost"].get<int64_t>(),
          row["records_duplicated"].get<int64_t>(), row["records_reordered"].get<int64_t>(), load);
    std::fflush(stdout);
    doc["runs"].push_back(std::move(row));
    doc["totals"] = totals_of(doc["runs"]);
    doc["machine"]["loadavg_at_end"] = loadavg();
    write_json(o.out, doc);
  }
  return doc;
}

}  // namespace ftd::bench
