// Failover benchmark: how fast a protected VM comes back when its primary
// host dies, with the witness and the corosync arbiter side by side, and
// whether a healthy pair under load ever decides to fail over (soak).
// Prints a table and writes bench/results/failover.json; sections of the
// file not run this time (another arbiter, the soak) are kept.
// `--consecutive N` is the failover soak instead: N host-kill runs in a row,
// every one recorded in bench/results/soak.json.
// Needs root, QEMU, the test guest, corosync/qdevice/qnetd for corosync.
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/failover_consecutive.h"
#include "bench/failover_report.h"
#include "bench/failover_run.h"
#include "bench/failover_soak.h"
#include "common/log.h"

namespace {

using Json = nlohmann::json;
using ftd::bench::loadavg;
using ftd::bench::summarize;
using ftd::bench::summary_metrics;
using ftd::bench::utc_now;
using ftd::bench::write_json;

void print_table(const Json& results) {
  fmt::print("\n{:<22}", "metric (ms)");
  for (const auto& [arbiter, _] : results.items()) fmt::print(" | {:^26}", arbiter);
  fmt::print("\n{:<22}", "");
  for (size_t i = 0; i < results.size(); ++i)
    fmt::print(" | {:>8} {:>8} {:>8}", "p50", "p99", "max");
  fmt::print("\n");
  for (const std::string& m : summary_metrics()) {
    fmt::print("{:<22}", m);
    for (const auto& [arbiter, r] : results.items()) {
      const Json& s = r["summary"][m];
      fmt::print(" | {:>8.0f} {:>8.0f} {:>8.0f}", s["p50"].get<double>(), s["p99"].get<double>(),
                 s["max"].get<double>());
    }
    fmt::print("\n");
  }
  for (const auto& [arbiter, r] : results.items())
    fmt::print("{}: runs={} failed={} not_activated={} records_not_intact={}\n", arbiter,
               r["summary"]["runs"].get<int>(), r.value("failed_runs", 0),
               r["summary"]["runs_not_activated"].get<int>(),
               r["summary"]["runs_records_not_intact"].get<int>());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"failover benchmark: host-kill runs per arbiter, false-failover soak"};
  std::vector<std::string> arbiters{"witness", "corosync"};
  int runs = 20;
  int corosync_runs = -1;
  double soak_minutes = 0;
  std::string soak_arbiter = "witness";
  double soak_rate = 200;
  std::string out = std::string(FTD_SOURCE_DIR) + "/bench/results/failover.json";
  app.add_option("--arbiter,--arbiters", arbiters, "arbiters to run host-kill runs with")
      ->check(CLI::IsMember({"witness", "corosync"}));
  app.add_option("--runs", runs, "host-kill runs per arbiter (0: none)");
  app.add_option("--corosync-runs", corosync_runs, "runs with corosync (default: --runs)");
  app.add_option("--soak-minutes", soak_minutes, "false-failover soak length (0: off)");
  app.add_option("--soak-arbiter", soak_arbiter)->check(CLI::IsMember({"witness", "corosync"}));
  app.add_option("--soak-record-rate", soak_rate, "records/s during the soak");
  int qdevice_timeout_ms = 0;
  app.add_option("--qdevice-timeout-ms", qdevice_timeout_ms,
                 "corosync quorum.device.timeout (0: corosync's 10000); results go to "
                 "\"corosync-qdevice<N>\"");
  int consecutive = 0;
  std::string keep_logs = "/tmp/ftd-failover-logs";
  app.add_option("--consecutive", consecutive,
                 "the failover soak: N host-kill runs one after the other (arbiter: --arbiter, "
                 "default witness), every run recorded; writes results/soak.json");
  app.add_option("--keep-logs", keep_logs,
                 "where the pair's logs of a failed --consecutive run are kept (run-<i>/)");
  auto* out_option = app.add_option("--out", out);
  CLI11_PARSE(app, argc, argv);
  ftd::init_logging("failover_bench", "warn");
  // The harness finds ftd, the witness and the guest through FTD_BUILD_DIR.
  ::setenv("FTD_BUILD_DIR", FTD_BUILD_DIR, /*overwrite=*/0);

  if (consecutive > 0) {
    if (out_option->count() == 0) out = std::string(FTD_SOURCE_DIR) + "/bench/results/soak.json";
    std::string command;
    for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
    const Json doc = ftd::bench::run_consecutive(
        {.runs = consecutive,
         .arbiter = app.count("--arbiter") ? arbiters.front() : "witness",
         .out = out,
         .keep_logs_dir = fmt::format("{}/{}", keep_logs, utc_now()),
         .command = command});
    const Json& t = doc["totals"];
    fmt::print(
        "\n{} runs: {} ok, {} failed ({} harness errors, {} failed activations); records sent "
        "{}, lost {}, duplicated {}, reordered {}; kill->active p50/max {:.0f}/{:.0f} ms, record "
        "outage p50/max {:.0f}/{:.0f} ms; load {:.1f}-{:.1f}\nwrote {}\n",
        t["runs"].get<int>(), t["runs_ok"].get<int>(), t["runs_failed"].get<int>(),
        t["harness_errors"].get<int>(), t["failed_activations"].get<int>(),
        t["records_sent"].get<int64_t>(), t["records_lost"].get<int64_t>(),
        t["records_duplicated"].get<int64_t>(), t["records_reordered"].get<int64_t>(),
        t["metrics"]["kill_to_active_ms"]["p50"].get<double>(),
        t["metrics"]["kill_to_active_ms"]["max"].get<double>(),
        t["metrics"]["record_outage_ms"]["p50"].get<double>(),
        t["metrics"]["record_outage_ms"]["max"].get<double>(), t["loadavg1_min"].get<double>(),
        t["loadavg1_max"].get<double>(), out);
    return t["runs_failed"].get<int>() == 0 ? 0 : 1;
  }

  Json doc = Json::object();
  if (std::ifstream in(out); in) doc = Json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) doc = Json::object();
  doc["bench"] = "failover";
  doc["date"] = utc_now();
  doc["machine"] = {{"nproc", std::thread::hardware_concurrency()},
                    {"loadavg_at_start", loadavg()},
                    {"kvm", ::access("/dev/kvm", F_OK) == 0}};
  if (!doc.contains("results")) doc["results"] = Json::object();

  for (const std::string& arbiter : runs > 0 ? arbiters : std::vector<std::string>{}) {
    const int n = arbiter == "corosync" && corosync_runs >= 0 ? corosync_runs : runs;
    const int qdevice = arbiter == "corosync" ? qdevice_timeout_ms : 0;
    const std::string key = qdevice > 0 ? fmt::format("{}-qdevice{}", arbiter, qdevice) : arbiter;
    Json section{{"runs", Json::array()},
                 {"failed_runs", 0},
                 {"errors", Json::array()},
                 {"date", utc_now()},
                 {"loadavg_at_start", loadavg()}};
    for (int i = 0; i < n; ++i) {
      auto r = ftd::bench::run_host_kill(
          {.arbiter = arbiter, .index = i, .qdevice_timeout_ms = qdevice});
      if (!r) {
        section["failed_runs"] = section["failed_runs"].get<int>() + 1;
        section["errors"].push_back(r.error().to_string().substr(0, 4000));
        fmt::print("{} run {}: FAILED {}\n", key, i, r.error().to_string().substr(0, 2000));
        continue;
      }
      fmt::print(
          "{} run {}: detect {:.0f} arbitrate {:.0f} activate {:.0f} (activation_us {:.0f}) "
          "kill->active {:.0f} record outage {:.0f} ping outage {:.0f} lost/dup/reord "
          "{}/{}/{}\n",
          key, i, (*r)["detect_ms"].get<double>(), (*r)["arbitrate_ms"].get<double>(),
          (*r)["activate_ms"].get<double>(), (*r)["activation_us_ms"].get<double>(),
          (*r)["kill_to_active_ms"].get<double>(), (*r)["record_outage_ms"].get<double>(),
          (*r)["ping_outage_ms"].get<double>(), (*r)["records"]["lost"].get<int>(),
          (*r)["records"]["duplicated"].get<int>(), (*r)["records"]["reordered"].get<int>());
      std::fflush(stdout);
      section["runs"].push_back(*r);
      section["summary"] = summarize(section["runs"]);
      section["loadavg_at_end"] = loadavg();
      doc["results"][key] = section;
      write_json(out, doc);  // partial results survive an interrupted bench
    }
    section["summary"] = summarize(section["runs"]);
    section["loadavg_at_end"] = loadavg();
    doc["results"][key] = section;
    write_json(out, doc);
  }
  if (!doc["results"].empty()) print_table(doc["results"]);

  if (soak_minutes > 0) {
    fmt::print("soak: {} min, arbiter {}, {} records/s, a busy loop per core\n", soak_minutes,
               soak_arbiter, soak_rate);
    std::fflush(stdout);
    auto s = ftd::bench::run_soak(soak_arbiter, soak_minutes, soak_rate);
    if (!s) {
      fmt::print("soak FAILED: {}\n", s.error().to_string().substr(0, 4000));
      doc["soak"] = {{"error", s.error().to_string().substr(0, 4000)}};
    } else {
      doc["soak"] = *s;
      fmt::print(
          "soak: false failover decisions {} peer-lost events {} max heartbeat age "
          "pri/sec {}/{} ms; records lost/dup/reord {}/{}/{}; load {}\n",
          (*s)["false_failover_decisions"].get<int>(), (*s)["peer_lost_events"].get<int>(),
          (*s)["primary"]["max_heartbeat_age_ms"].get<int64_t>(),
          (*s)["secondary"]["max_heartbeat_age_ms"].get<int64_t>(),
          (*s)["records"]["lost"].get<int>(), (*s)["records"]["duplicated"].get<int>(),
          (*s)["records"]["reordered"].get<int>(), (*s)["loadavg_under_load"].get<std::string>());
    }
  }
  doc["machine"]["loadavg_at_end"] = loadavg();
  write_json(out, doc);
  fmt::print("wrote {}\n", out);
  return 0;
}
