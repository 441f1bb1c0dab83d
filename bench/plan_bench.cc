// Validates `ftctl plan`'s cost model on the real test guest (TCG): per cell
// (RAM size x idle/memload) the guest is protected at the sample epoch, the
// plan's inputs are sampled exactly as the daemon's Plan RPC does
// (planning::sample_plan_inputs on the live pipeline), and the predictions
// are then compared with what is measured, in the same run:
//  - protection at the sample epoch (a later window of the same guest) and at
//    each other --check-epochs value (a fresh guest, same load, protected at
//    that epoch): pause p50/p99, checkpoints/s, wire bytes/s, added ping
//    latency (protected RTT minus the same guest's RTT unprotected after a
//    failover);
//  - QEMU's own pre-copy migration of that guest (to `exec:cat > /dev/null`)
//    with QEMU's default max-bandwidth (128 MiB/s) and downtime-limit
//    (300 ms), and with downtime-limit lowered: downtime, total time, bytes,
//    against the pre-copy model at the cap and limit QEMU reports.
// error = |predicted - measured| / measured. Writes bench/results/plan.json
// after every cell.
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench/qemu_migration.h"
#include "bench/qemu_rig.h"
#include "common/heap_reuse.h"
#include "planning/plan_report.h"
#include "planning/plan_sampler.h"

namespace ftd::bench {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;
using planning::percentile_of;

// QEMU 7.2's defaults, set explicitly: ftd's QmpEngine raises max-bandwidth
// to 1 TiB/s on the QEMUs it drives (device state saves must not be throttled),
// and the activated standby keeps that.
constexpr uint64_t kQemuDefaultMaxBandwidth = 128ull << 20;
constexpr uint64_t kQemuDefaultDowntimeLimitMs = 300;

struct Options {
  std::vector<uint64_t> sizes_mib{128};
  std::vector<std::string> loads{"idle", "memload"};
  uint64_t memload_rate = 5000;
  int sample_epoch_ms = 50;
  std::vector<int> check_epochs{50, 20};
  double sample_s = 5;
  double window_s = 8;
  int ping_interval_ms = 20;
  uint64_t lowered_downtime_limit_ms = 50;
  std::string guest_dir;
  std::string out = std::string(FTD_SOURCE_DIR) + "/bench/results/plan.json";
  bool verbose = false;
};

double secs_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double rtt_ms(const PingResult& r, double p) {
  std::vector<double> v = r.rtt_us;
  return percentile_of(v, p) / 1000.0;
}

// What protection really did over a window: the pipeline's own pause
// measurement (the one the plan sampled), rates, and ping through the
// output-commit proxy over the same seconds.
Json measure_protection(Rig& rig, Pinger& pinger, const Options& o) {
  const auto window = std::chrono::milliseconds(static_cast<int64_t>(o.window_s * 1000));
  const auto t0 = Clock::now();
  auto ping = std::async(std::launch::async, [&] {
    return pinger.run(std::chrono::milliseconds(o.ping_interval_ms), window);
  });
  std::this_thread::sleep_for(window);
  const double dt = secs_since(t0);
  const PlanSamples s = rig.pipeline().plan_samples_since(t0);
  const PingResult pr = ping.get();
  std::vector<double> pauses;
  for (const auto& p : s.pauses) pauses.push_back(static_cast<double>(p.total_us) / 1000);
  double wire = 0;
  for (const auto& sh : s.ships) wire += static_cast<double>(sh.encoded_bytes);
  return {{"window_s", dt},
          {"checkpoints", s.pauses.size()},
          {"pause_p50_ms", percentile_of(pauses, 50)},
          {"pause_p99_ms", percentile_of(pauses, 99)},
          {"checkpoints_per_sec", static_cast<double>(s.pauses.size()) / dt},
          {"wire_bytes_per_s", wire / dt},
          {"ping_sent", pr.sent},
          {"ping_received", pr.received},
          {"rtt_p50_ms", rtt_ms(pr, 50)},
          {"rtt_p99_ms", rtt_ms(pr, 99)}};
}

// A protected guest at `epoch_ms`, booted and in steady state.
Result<std::unique_ptr<Rig>> protected_rig(const Options& o, uint64_t mib, bool memload,
                                           int epoch_ms, const std::string& tag, Json& log) {
  RigConfig rc{.guest_dir = o.guest_dir,
               .memory_mib = mib,
               .append = rig_guest_append(mib, memload, o.memload_rate),
               .epochs = EpochPolicy::fixed(std::chrono::milliseconds(epoch_ms)),
               .tag = tag};
  FTD_ASSIGN_OR_RETURN(auto rig, bench::protected_rig(std::move(rc), memload, log));
  log["epoch_ms"] = epoch_ms;
  return rig;
}

// A measured value of 0 is one QEMU did not report (query-migrate sometimes
// says "completed" with total-time and downtime 0): kept, not scored.
void add_check(Json& checks, const std::string& metric, double epoch_ms, double predicted,
               double measured) {
  Json c{{"metric", metric}, {"epoch_ms", epoch_ms}, {"predicted", predicted}};
  if (measured > 0) {
    c["measured"] = measured;
    c["error"] = std::abs(predicted - measured) / measured;
  } else {
    c["measured"] = nullptr;
    c["error"] = nullptr;
  }
  checks.push_back(c);
}

void check_protection(Json& checks, const planning::PlanInputs& in, double epoch_ms, const Json& m,
                      double baseline_rtt_p50_ms, double baseline_rtt_p99_ms) {
  const auto p = planning::predict_protection(in, epoch_ms);
  add_check(checks, "pause_p50_ms", epoch_ms, p.pause_p50_ms, m["pause_p50_ms"].get<double>());
  add_check(checks, "pause_p99_ms", epoch_ms, p.pause_p99_ms, m["pause_p99_ms"].get<double>());
  add_check(checks, "checkpoints_per_sec", epoch_ms, p.checkpoints_per_sec,
            m["checkpoints_per_sec"].get<double>());
  add_check(checks, "wire_bytes_per_s", epoch_ms, p.wire_bytes_per_s,
            m["wire_bytes_per_s"].get<double>());
  add_check(checks, "added_latency_p50_ms", epoch_ms, p.added_latency_p50_ms,
            m["rtt_p50_ms"].get<double>() - baseline_rtt_p50_ms);
  add_check(checks, "added_latency_p99_ms", epoch_ms, p.added_latency_p99_ms,
            m["rtt_p99_ms"].get<double>() - baseline_rtt_p99_ms);
}

Status run_cell(const Options& o, uint64_t mib, bool memload, const std::string& tag, Json& cell) {
  Json checks = Json::array();
  Json log;
  FTD_ASSIGN_OR_RETURN(auto rig, protected_rig(o, mib, memload, o.sample_epoch_ms, tag, log));
  cell["sample_rig"] = log;
  FTD_ASSIGN_OR_RETURN(Pinger pinger, Pinger::open(rig->netns(), kGuestIp));

  // 1. The plan, sampled the way the daemon samples it.
  planning::SampleOptions so{
      .window = std::chrono::milliseconds(static_cast<int64_t>(o.sample_s * 1000))};
  FTD_ASSIGN_OR_RETURN(planning::PlanInputs in,
                       planning::sample_plan_inputs(rig->pipeline(), rig->engine().memory(), so));
  cell["plan"] = planning::plan_json(in, {});
  fmt::print("{}", planning::plan_table(in, {}));

  // 2. Protection at the sample epoch, a later window of the same guest.
  Json measured;
  measured[std::to_string(o.sample_epoch_ms)] = measure_protection(*rig, pinger, o);

  // 3. The same guest unprotected (failover; the standby runs it behind a
  // pass-through proxy): the ping baseline, then QEMU's pre-copy.
  rig->lose_primary();
  if (auto r = rig->failover(); !r) return std::unexpected(r.error().with_context("failover"));
  FTD_TRY(pinger.wait_answer(5ms, 20s));
  const PingResult base =
      pinger.run(std::chrono::milliseconds(o.ping_interval_ms),
                 std::chrono::milliseconds(static_cast<int64_t>(o.window_s * 1000)));
  cell["unprotected_rtt"] = {
      {"p50_ms", rtt_ms(base, 50)}, {"p99_ms", rtt_ms(base, 99)}, {"received", base.received}};
  // First a calibration: the stopped guest unthrottled measures the rate of
  // QEMU's stream into the pipe, the rate its (unthrottled) stop-and-copy runs at.
  FTD_ASSIGN_OR_RETURN(Json mig,
                       qemu_migrations(rig->activator().standby()->process().qmp(),
                                       {{.name = "calibration_stopped_unthrottled",
                                         .max_bandwidth = 1ull << 40,
                                         .stopped = true},
                                        {.name = "defaults",
                                         .max_bandwidth = kQemuDefaultMaxBandwidth,
                                         .downtime_limit_ms = kQemuDefaultDowntimeLimitMs},
                                        {.name = "downtime_limit_lowered",
                                         .max_bandwidth = kQemuDefaultMaxBandwidth,
                                         .downtime_limit_ms = o.lowered_downtime_limit_ms}}));
  const Json& cal = mig["calibration_stopped_unthrottled"];
  const double stream_bytes_per_s =
      json_number(cal, "ram_transferred_bytes") / std::max(1.0, qemu_total_ms(cal)) * 1000;
  cell["qemu_stream_bytes_per_s"] = stream_bytes_per_s;
  cell["qemu_migration"] = mig;
  for (const char* run : {"defaults", "downtime_limit_lowered"}) {
    const Json& m = mig[run];
    planning::PrecopyParams pp{.bandwidth_bytes_per_s = json_number(m, "max_bandwidth"),
                               .stop_copy_bytes_per_s = stream_bytes_per_s,
                               .downtime_limit_ms = json_number(m, "downtime_limit_ms")};
    const auto pre = planning::predict_precopy(in, pp);
    cell["precopy_predicted"][run] = {
        {"converges", pre.converges}, {"rounds", pre.rounds}, {"downtime_ms", pre.downtime_ms},
        {"total_ms", pre.total_ms},   {"bytes", pre.bytes},   {"why", pre.why}};
    const double limit = pp.downtime_limit_ms;
    add_check(checks, fmt::format("qemu_downtime_ms (limit {:.0f})", limit), 0, pre.downtime_ms,
              json_number(m, "downtime_ms"));
    add_check(checks, fmt::format("qemu_total_ms (limit {:.0f})", limit), 0, pre.total_ms,
              qemu_total_ms(m));
    add_check(checks, fmt::format("qemu_bytes (limit {:.0f})", limit), 0, pre.bytes,
              json_number(m, "ram_transferred_bytes"));
  }
  rig.reset();
  const double b50 = rtt_ms(base, 50), b99 = rtt_ms(base, 99);
  check_protection(checks, in, o.sample_epoch_ms, measured[std::to_string(o.sample_epoch_ms)], b50,
                   b99);

  // 4. Other epochs: a fresh guest with the same load protected at each.
  for (int e : o.check_epochs) {
    if (e == o.sample_epoch_ms) continue;
    Json elog;
    FTD_ASSIGN_OR_RETURN(auto other,
                         protected_rig(o, mib, memload, e, tag + "e" + std::to_string(e), elog));
    FTD_ASSIGN_OR_RETURN(Pinger p2, Pinger::open(other->netns(), kGuestIp));
    Json m = measure_protection(*other, p2, o);
    m["rig"] = elog;
    measured[std::to_string(e)] = m;
    check_protection(checks, in, e, m, b50, b99);
  }
  cell["measured"] = measured;
  cell["checks"] = checks;
  return ok();
}

void print_checks(const Json& cell) {
  fmt::print("{:>4} MiB {:<8} {:<34} {:>6} {:>12} {:>12} {:>7}\n", cell["size_mib"].get<int>(),
             cell["load"].get<std::string>(), "metric", "epoch", "predicted", "measured", "error");
  if (!cell.contains("checks")) return;
  for (const auto& c : cell["checks"]) {
    if (c["measured"].is_null()) {
      fmt::print("{:>22} {:<34} {:>6.0f} {:>12.2f} {:>12} {:>7}\n", "",
                 c["metric"].get<std::string>(), c["epoch_ms"].get<double>(),
                 c["predicted"].get<double>(), "n/a", "");
      continue;
    }
    fmt::print("{:>22} {:<34} {:>6.0f} {:>12.2f} {:>12.2f} {:>6.1f}%\n", "",
               c["metric"].get<std::string>(), c["epoch_ms"].get<double>(),
               c["predicted"].get<double>(), c["measured"].get<double>(),
               100 * c["error"].get<double>());
  }
}

int run(int argc, char** argv) {
  keep_freed_heap_memory();
  Options o;
  CLI::App app{"ftctl plan's model against measurement on the real test guest"};
  app.add_option("--sizes-mib", o.sizes_mib, "guest RAM sizes (MiB)")->check(CLI::Range(64, 4096));
  app.add_option("--loads", o.loads)->check(CLI::IsMember({"idle", "memload"}));
  app.add_option("--memload-rate", o.memload_rate, "memload pages written per second");
  app.add_option("--sample-epoch-ms", o.sample_epoch_ms)->check(CLI::Range(5, 10000));
  app.add_option("--check-epochs", o.check_epochs, "epochs to predict and measure")
      ->check(CLI::Range(5, 10000));
  app.add_option("--sample-s", o.sample_s, "plan sample window")->check(CLI::Range(1.0, 60.0));
  app.add_option("--window-s", o.window_s, "measurement window")->check(CLI::Range(1.0, 600.0));
  app.add_option("--downtime-limit-ms", o.lowered_downtime_limit_ms,
                 "QEMU's lowered downtime-limit for the second migration");
  app.add_option("--guest-dir", o.guest_dir,
                 "vmlinuz + initrd.img (default: $FTD_GUEST_DIR or ~/.cache/ftd/guest)");
  app.add_option("--out", o.out, "JSON output path");
  app.add_flag("--verbose", o.verbose, "info logs");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(o.verbose ? spdlog::level::info : spdlog::level::warn);
  o.guest_dir = guest_dir_or_default(o.guest_dir);
  if (::geteuid() != 0) {
    fmt::print(stderr, "plan_bench: needs root (network namespaces, taps)\n");
    return 2;
  }
  const auto t0 = Clock::now();
  Json doc{{"what", "ftctl plan's predictions vs measurement, same guest and load, same run"},
           {"started", static_cast<int64_t>(std::time(nullptr))},
           {"options",
            {{"sample_epoch_ms", o.sample_epoch_ms},
             {"check_epochs", o.check_epochs},
             {"sample_s", o.sample_s},
             {"window_s", o.window_s},
             {"memload", "ftd.memload=<min(64, RAM/4) MiB>:" + std::to_string(o.memload_rate)}}},
           {"cells", Json::array()}};
  bool any_error = false;
  int n = 0;
  for (uint64_t mib : o.sizes_mib)
    for (const auto& load : o.loads) {
      Json cell{{"size_mib", mib}, {"load", load}, {"loadavg_before", ""}};
      std::ifstream("/proc/loadavg") >> cell["loadavg_before"].get_ref<std::string&>();
      const auto c0 = Clock::now();
      if (auto st = run_cell(o, mib, load == "memload", fmt::format("p{}", n++), cell); !st) {
        cell["error"] = st.error().to_string();
        fmt::print(stderr, "{} MiB {}: ERROR {}\n", mib, load, st.error().to_string());
        any_error = true;
      }
      cell["cell_s"] = secs_since(c0);
      print_checks(cell);
      doc["cells"].push_back(cell);
      doc["total_s"] = secs_since(t0);
      std::ofstream(o.out) << doc.dump(2) << "\n";
    }
  fmt::print("total {:.0f} s; wrote {}\n", secs_since(t0), o.out);
  return any_error ? 1 : 0;
}

}  // namespace
}  // namespace ftd::bench

int main(int argc, char** argv) { return ftd::bench::run(argc, argv); }
