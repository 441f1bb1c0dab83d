// Planned migration with ftd (`ftctl migrate`, real daemons) against QEMU's
// own pre-copy live migration between two QEMUs (QEMU's defaults, and with
// downtime-limit lowered), on the same test guest (deploy/guest, TCG), same
// RAM and same load, in the same run; plus re-protection after a failover,
// full vs differential. Per cell (RAM x idle/memload): downtime, the gap a
// pinging client saw, total time, p50/p99 over --runs migrations each; the
// plan the primary's daemon sampled (`ftctl plan`'s model) against what was
// measured. Writes bench/results/migrate.json after every cell.
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "bench/failover_report.h"
#include "bench/migrate_ftd.h"
#include "bench/migrate_qemu.h"
#include "bench/migrate_report.h"

namespace ftd::bench {
namespace {

using Json = nlohmann::json;

// QEMU 7.2's defaults, set explicitly: ftd's QmpEngine and StandbyQemu raise
// max-bandwidth to 1 TiB/s on the QEMUs they start.
constexpr uint64_t kQemuDefaultMaxBandwidth = 128ull << 20;
constexpr uint64_t kQemuDefaultDowntimeLimitMs = 300;

struct Options {
  std::vector<int> sizes_mib{128, 512};  // ~22 min with 10 runs each (bench/README.md)
  std::vector<std::string> loads{"idle", "memload"};
  std::vector<std::string> sides{"ftd", "qemu"};
  uint64_t memload_rate = 5000;
  int runs = 10;
  uint64_t lowered_downtime_limit_ms = 30;
  int qemu_timeout_s = 60;
  double plan_sample_s = 5;
  bool no_reprotect = false;
  int ping_interval_ms = 10;
  std::string guest_dir;
  std::string keep_logs_dir;
  std::string out = std::string(FTD_SOURCE_DIR) + "/bench/results/migrate.json";
  bool verbose = false;
};

// What each column measures, so the JSON and the table say it once.
Json measures(const Options& o) {
  return {
      {"ftd.downtime_ms",
       "daemon: old host's final pause (guest stopped) -> new host's cont, two clocks of one "
       "machine here (MigrateReply.downtime_us, log line migration.done)"},
      {"ftd.total_ms",
       "client clock: `ftctl migrate` request -> the new primary reports protected in the new "
       "direction (differential sync back done)"},
      {"ftd.handover_ms",
       "daemon: request -> the old host is the new secondary (MigrateReply.total_us)"},
      {"qemu.downtime_ms",
       "source QEMU's query-migrate `downtime` (source stop -> completion); 0 = not reported"},
      {"qemu.total_ms",
       "query-migrate `total-time` (our clock migrate -> completion event where QEMU reported 0)"},
      {"client_gap_ms",
       fmt::format("longest silence between ping replies (every {} ms, from the client namespace) "
                   "overlapping [request, migration answered (ftd) / destination running (QEMU)]",
                   o.ping_interval_ms)}};
}

Json summarize_ftd(const Json& f) {
  const Json& runs = f.value("migrations", Json::array());
  int full = 0;
  for (const Json& r : runs) full += r.value("full_resync", false) ? 1 : 0;
  return {{"downtime_ms", spread(runs, "downtime_ms")},
          {"client_gap_ms", spread(runs, "client_gap_ms")},
          {"total_ms", spread(runs, "request_to_protected_ms")},
          {"handover_ms", spread(runs, "handover_total_ms")},
          {"old_host_pause_ms", spread(runs, "old_host_pause_ms")},
          {"final_checkpoint_pages", spread(runs, "final_checkpoint_pages")},
          {"sync_pages_sent", spread(runs, "sync_pages_sent")},
          {"runs_with_full_resync", full}};
}

Json summarize_qemu(Json runs) {
  int unreported = 0;
  for (Json& r : runs) {
    const double d = json_number(r, "downtime_ms");
    r["qemu_downtime_ms"] = d > 0 ? d : -1.0;
    unreported += d > 0 ? 0 : 1;
    r["qemu_total_ms"] = qemu_total_ms(r);
  }
  return {{"downtime_ms", spread(runs, "qemu_downtime_ms")},
          {"downtime_not_reported", unreported},
          {"client_gap_ms", spread(runs, "client_gap_ms")},
          {"total_ms", spread(runs, "qemu_total_ms")},
          {"ram_transferred_bytes", spread(runs, "ram_transferred_bytes")}};
}

// Prediction vs measured p50: error = |pred - meas| / meas.
void add_check(Json& checks, const std::string& metric, double predicted, double measured) {
  Json c{{"metric", metric}, {"predicted", predicted}, {"measured_p50", measured}};
  c["error"] = measured > 0 ? Json(std::abs(predicted - measured) / measured) : Json(nullptr);
  checks.push_back(c);
}

// The plan is sampled on the first primary, whose guest runs on memfd: its
// total (with the seed) is checked against the first migration; the total
// without the seed and the parts against the later ones (guests on replica
// images both ways), p50 of each.
void add_turnaround_checks(Json& checks, const Json& plan, const Json& runs) {
  if (runs.empty()) return;
  const Json& m = plan["ftd_migration"];
  const Json later = Json(std::vector<Json>(runs.begin() + 1, runs.end()));
  auto phases = [](const Json& rs) {
    Json out = Json::array();
    for (const Json& r : rs) out.push_back(r.value("phases_ms", Json::object()));
    return out;
  };
  add_check(checks, "ftd total_ms, 1st migration (seed)", m["total_ms"],
            json_number(runs[0], "request_to_protected_ms"));
  add_check(checks, "ftd seed_ms, 1st migration", m["seed_ms"],
            json_number(runs[0].value("phases_ms", Json::object()), "old_host_replica_seeded"));
  if (later.empty()) return;
  add_check(checks, "ftd total_ms, later migrations (no seed)", m["total_without_seed_ms"],
            spread(later, "request_to_protected_ms")["p50"]);
  add_check(checks, "ftd standby start ms", plan["inputs"]["qemu_start_ms"],
            spread(phases(runs), "old_host_standby_start")["p50"]);
  add_check(checks, "ftd compare ms (sync.diff)", m["compare_ms"],
            spread(phases(runs), "sync_digest_compare")["p50"]);
}

Json plan_checks(const Json& cell) {
  Json checks = Json::array();
  const Json& s = cell["summary"];
  if (!cell.contains("ftd") || !cell["ftd"].contains("plan") ||
      !cell["ftd"]["plan"].contains("ftd_migration"))
    return checks;
  const Json& plan = cell["ftd"]["plan"];
  if (s.contains("ftd")) {
    add_check(checks, "ftd downtime_ms", plan["ftd_migration"]["downtime_ms"],
              s["ftd"]["downtime_ms"]["p50"]);
    add_turnaround_checks(checks, plan, cell["ftd"].value("migrations", Json::array()));
  }
  for (const auto& [name, key] : {std::pair{"qemu_default", "qemu_precopy"},
                                  std::pair{"qemu_lowered", "qemu_precopy_lowered"}}) {
    if (!s.contains(name) || !plan.contains(key)) continue;
    add_check(checks, std::string(name) + " downtime_ms", plan[key]["downtime_ms"],
              s[name]["downtime_ms"]["p50"]);
    add_check(checks, std::string(name) + " total_ms", plan[key]["total_ms"],
              s[name]["total_ms"]["p50"]);
  }
  return checks;
}

std::string p50_99(const Json& s) {
  if (s.value("n", 0) == 0) return "—";
  return fmt::format("{:.0f} / {:.0f}", s["p50"].get<double>(), s["p99"].get<double>());
}

void print_cell(const Json& cell) {
  const std::string what =
      fmt::format("{} MiB {}", cell["size_mib"].get<int>(), cell["load"].get<std::string>());
  const Json& s = cell["summary"];
  fmt::print("\n{:<18} {:<26} {:>4} {:>15} {:>15} {:>17}\n", what, "method", "n", "downtime p50/99",
             "client gap", "total p50/99 ms");
  auto row = [&](const char* key, const std::string& label) {
    if (!s.contains(key)) return;
    const Json& m = s[key];
    fmt::print("{:<18} {:<26} {:>4} {:>15} {:>15} {:>17}\n", "", label,
               m["total_ms"]["n"].get<int>(), p50_99(m["downtime_ms"]), p50_99(m["client_gap_ms"]),
               p50_99(m["total_ms"]));
  };
  row("ftd", "ftd migrate (+protect back)");
  row("qemu_default", "QEMU defaults");
  row("qemu_lowered", "QEMU downtime-limit lowered");
  for (const char* key : {"qemu_default", "qemu_lowered"})
    if (cell.contains("qemu") && cell["qemu"].contains(key) &&
        cell["qemu"][key].contains("did_not_finish"))
      fmt::print("{:<18} {} did not finish: {}\n", "", key,
                 cell["qemu"][key]["did_not_finish"].get<std::string>());
  if (cell.contains("ftd"))
    for (const Json& r : cell["ftd"].value("reprotect", Json::array()))
      fmt::print("{:<18} re-protect {:<44} {:>7.0f} ms, pages sent {} skipped {}, wire {} B\n", "",
                 r["kind"].get<std::string>(), r["protect_to_protected_ms"].get<double>(),
                 r["sync_pages_sent"].get<uint64_t>(), r["sync_pages_skipped"].get<uint64_t>(),
                 r["wire_bytes"].get<uint64_t>());
  for (const Json& c : cell.value("plan_checks", Json::array()))
    fmt::print(
        "{:<18} plan {:<40} pred {:>8.1f} meas {:>8.1f} error {}\n", "",
        c["metric"].get<std::string>(), c["predicted"].get<double>(),
        c["measured_p50"].get<double>(),
        c["error"].is_null() ? "n/a" : fmt::format("{:.0f} %", 100 * c["error"].get<double>()));
}

bool wants(const Options& o, const std::string& side) {
  return std::find(o.sides.begin(), o.sides.end(), side) != o.sides.end();
}

void run_cell(const Options& o, int mib, bool memload, int index, Json& cell) {
  if (wants(o, "ftd")) {
    FtdSideOptions fo{.memory_mib = mib,
                      .append_extra = memload ? memload_arg(mib, o.memload_rate) : "",
                      .runs = o.runs,
                      .plan_sample_ms = static_cast<unsigned>(o.plan_sample_s * 1000),
                      .lowered_downtime_limit_ms = static_cast<double>(o.lowered_downtime_limit_ms),
                      .reprotect = !o.no_reprotect,
                      .ping_interval_s = o.ping_interval_ms / 1000.0};
    if (!o.keep_logs_dir.empty())
      fo.keep_logs_dir =
          fmt::format("{}/{}-{}", o.keep_logs_dir, mib, memload ? "memload" : "idle");
    auto f = run_ftd_side(fo);
    if (f) {
      cell["ftd"] = *f;
      cell["summary"]["ftd"] = summarize_ftd(*f);
    } else {
      cell["ftd"] = {{"error", f.error().to_string()}};
      fmt::print(stderr, "ftd side: {}\n", f.error().to_string());
    }
  }
  if (wants(o, "qemu")) {
    QemuSideOptions qo{.guest_dir = o.guest_dir,
                       .memory_mib = static_cast<uint64_t>(mib),
                       .memload = memload,
                       .memload_rate = o.memload_rate,
                       .runs = o.runs,
                       .configs = {{.name = "qemu_default",
                                    .max_bandwidth = kQemuDefaultMaxBandwidth,
                                    .downtime_limit_ms = kQemuDefaultDowntimeLimitMs},
                                   {.name = "qemu_lowered",
                                    .max_bandwidth = kQemuDefaultMaxBandwidth,
                                    .downtime_limit_ms = o.lowered_downtime_limit_ms}},
                       .timeout = std::chrono::seconds(o.qemu_timeout_s),
                       .ping_interval_s = o.ping_interval_ms / 1000.0,
                       .tag = fmt::format("m{}", index)};
    auto q = run_qemu_side(qo);
    if (q) {
      cell["qemu"] = *q;
      for (const char* key : {"qemu_default", "qemu_lowered"})
        cell["summary"][key] = summarize_qemu((*q)[key].value("runs", Json::array()));
    } else {
      cell["qemu"] = {{"error", q.error().to_string()}};
      fmt::print(stderr, "qemu side: {}\n", q.error().to_string());
    }
  }
  cell["plan_checks"] = plan_checks(cell);
}

int run(int argc, char** argv) {
  Options o;
  CLI::App app{"ftd planned migration vs QEMU live migration, same guest, same run"};
  app.add_option("--sizes-mib", o.sizes_mib, "guest RAM sizes (MiB)")->check(CLI::Range(64, 4096));
  app.add_option("--loads", o.loads)->check(CLI::IsMember({"idle", "memload"}));
  app.add_option("--sides", o.sides, "what to measure")->check(CLI::IsMember({"ftd", "qemu"}));
  app.add_option("--runs", o.runs, "migrations per method and cell")->check(CLI::Range(1, 1000));
  app.add_option("--memload-rate", o.memload_rate, "memload pages written per second");
  app.add_option("--downtime-limit-ms", o.lowered_downtime_limit_ms,
                 "QEMU's lowered downtime-limit")
      ->check(CLI::Range(1, 10000));
  app.add_option("--qemu-timeout-s", o.qemu_timeout_s,
                 "cancel a QEMU migration not completed by then (reported as not finished)")
      ->check(CLI::Range(5, 3600));
  app.add_option("--plan-sample-s", o.plan_sample_s, "ftctl plan's sample window")
      ->check(CLI::Range(1.0, 60.0));
  app.add_flag("--no-reprotect", o.no_reprotect, "skip the re-protection measurements");
  app.add_option("--ping-interval-ms", o.ping_interval_ms)->check(CLI::Range(2, 1000));
  app.add_option("--guest-dir", o.guest_dir,
                 "vmlinuz + initrd.img (default: $FTD_GUEST_DIR or ~/.cache/ftd/guest)");
  app.add_option("--keep-logs", o.keep_logs_dir, "copy the daemons' logs of each cell here");
  app.add_option("--out", o.out, "JSON output path");
  app.add_flag("--verbose", o.verbose, "info logs");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(o.verbose ? spdlog::level::info : spdlog::level::warn);
  o.guest_dir = guest_dir_or_default(o.guest_dir);
  // The harness finds ftd, the witness and the record client through FTD_BUILD_DIR.
  ::setenv("FTD_BUILD_DIR", FTD_BUILD_DIR, /*overwrite=*/0);
  if (::geteuid() != 0) {
    fmt::print(stderr, "migrate_bench: needs root (network namespaces, taps)\n");
    return 2;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto secs = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  Json doc{{"what",
            "ftd planned migration (ftctl migrate) vs QEMU live migration between two QEMUs, same "
            "test guest, RAM and load, same run; re-protection full vs differential"},
           {"date", utc_now()},
           {"measures", measures(o)},
           {"options",
            {{"runs", o.runs},
             {"qemu_default",
              {{"max_bandwidth", kQemuDefaultMaxBandwidth},
               {"downtime_limit_ms", kQemuDefaultDowntimeLimitMs}}},
             {"qemu_lowered",
              {{"max_bandwidth", kQemuDefaultMaxBandwidth},
               {"downtime_limit_ms", o.lowered_downtime_limit_ms}}},
             {"qemu_timeout_s", o.qemu_timeout_s},
             {"ping_interval_ms", o.ping_interval_ms},
             {"memload", "ftd.memload=<min(64, RAM/4) MiB>:" + std::to_string(o.memload_rate)}}},
           {"cells", Json::array()}};
  bool any_error = false;
  int index = 0;
  for (int mib : o.sizes_mib)
    for (const auto& load : o.loads) {
      Json cell{{"size_mib", mib}, {"load", load}, {"loadavg_before", loadavg()}};
      const double c0 = secs();
      fmt::print("== {} MiB {} ==\n", mib, load);
      run_cell(o, mib, load == "memload", index++, cell);
      any_error = any_error || cell.value("ftd", Json::object()).contains("error") ||
                  cell.value("qemu", Json::object()).contains("error");
      cell["loadavg_after"] = loadavg();
      cell["cell_s"] = secs() - c0;
      print_cell(cell);
      doc["cells"].push_back(cell);
      doc["total_s"] = secs();
      write_json(o.out, doc);
    }
  fmt::print("total {:.0f} s; wrote {}\n", secs(), o.out);
  return any_error ? 1 : 0;
}

}  // namespace
}  // namespace ftd::bench

int main(int argc, char** argv) { return ftd::bench::run(argc, argv); }
