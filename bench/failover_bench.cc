// Failover benchmark: how fast a protected VM comes back when its primary
// host dies, with the witness and the corosync arbiter side by side, and
// whether a healthy pair under load ever decides to fail over (soak).
// Prints a table and writes bench/results/failover.json; sections of the
// file not run this time (another arbiter, the soak) are kept.
// Needs root, QEMU, the test guest, corosync/qdevice/qnetd for corosync.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/failover_run.h"
#include "bench/failover_soak.h"
#include "common/log.h"

namespace {

using Json = nlohmann::json;

// Metrics summarised per arbiter, in table order.
constexpr const char* kMetrics[] = {"detect_ms",        "arbitrate_ms",        "activate_ms",
                                    "activation_us_ms", "kill_to_active_ms",   "record_outage_ms",
                                    "ping_outage_ms",   "ping_longest_gap_ms", "pair_start_s"};

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

// Nearest rank on the runs that measured the step (negative: not seen).
double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return -1;
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

Json summarize(const Json& runs) {
  Json s = Json::object();
  for (const char* m : kMetrics) {
    std::vector<double> v;
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
    if (!r.contains("records")) continue;
    const Json& rec = r["records"];
    if (rec.value("lost", -1) != 0 || rec.value("duplicated", -1) != 0 ||
        rec.value("reordered", -1) != 0)
      ++bad;
  }
  s["runs"] = runs.size();
  s["runs_not_activated"] = inactive;
  s["runs_records_not_intact"] = bad;
  return s;
}

void print_table(const Json& results) {
  fmt::print("\n{:<22}", "metric (ms)");
  for (const auto& [arbiter, _] : results.items()) fmt::print(" | {:^26}", arbiter);
  fmt::print("\n{:<22}", "");
  for (size_t i = 0; i < results.size(); ++i)
    fmt::print(" | {:>8} {:>8} {:>8}", "p50", "p99", "max");
  fmt::print("\n");
  for (const char* m : kMetrics) {
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

void write(const std::string& path, const Json& doc) { std::ofstream(path) << doc.dump(2) << "\n"; }

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
  app.add_option("--out", out);
  CLI11_PARSE(app, argc, argv);
  ftd::init_logging("failover_bench", "warn");
  // The harness finds ftd, the witness and the guest through FTD_BUILD_DIR.
  ::setenv("FTD_BUILD_DIR", FTD_BUILD_DIR, /*overwrite=*/0);

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
      auto r = ftd::bench::run_host_kill(arbiter, i, qdevice);
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
      write(out, doc);  // partial results survive an interrupted bench
    }
    section["summary"] = summarize(section["runs"]);
    section["loadavg_at_end"] = loadavg();
    doc["results"][key] = section;
    write(out, doc);
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
  write(out, doc);
  fmt::print("wrote {}\n", out);
  return 0;
}
