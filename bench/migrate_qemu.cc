#include "bench/migrate_qemu.h"

#include <fmt/format.h>

#include <thread>

#include "bench/migrate_report.h"
#include "bench/qemu_migration_target.h"
#include "tests/system/daemon_harness.h"

namespace ftd::bench {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::unix_now_s;

// Reproduced without ftd: two plain QEMUs, anonymous RAM too (bench/README.md).
constexpr const char* kQemuTcgPanicNote =
    "guest kernel panic on the destination after QEMU's own pre-copy: a QEMU 7.2 TCG issue, "
    "reproduced between two plain QEMUs without ftd (bench/qemu_tcg_migration_repro.py, "
    "results/qemu_tcg_migration_repro.json); this parameter set ended here";

// Polls the destination until its guest runs: the migration is complete
// there too and autostart (armed by listen()) has resumed it.
Status wait_running(QmpClient& qmp, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    FTD_ASSIGN_OR_RETURN(Json s, qmp.execute("query-status"));
    if (s.value("running", false)) return ok();
    std::this_thread::sleep_for(2ms);
  }
  return make_error(ErrorCode::kTimeout, "destination QEMU not running after {} s",
                    timeout.count());
}

// The source after a migration that did not finish: cancelled, running again.
void cancel(QmpClient& qmp) {
  (void)qmp.execute("migrate_cancel");
  for (int i = 0; i < 250; ++i) {
    auto s = qmp.execute("query-status");
    if (s && s->value("running", false)) return;
    std::this_thread::sleep_for(20ms);
  }
}

// ms from `since` to the first ping reply after it, -1 if none within `timeout`.
double first_reply_after_ms(const testing::PingProbe& ping, double since,
                            std::chrono::seconds timeout) {
  double first = -1;
  wait_until(
      [&] {
        for (const auto& r : ping.report().replies)
          if (r.unix_s > since) {
            first = (r.unix_s - since) * 1e3;
            return true;
          }
        return false;
      },
      static_cast<double>(timeout.count()));
  return first;
}

// The last `max` bytes of a file (the destination's guest console).
std::string file_tail(const std::string& path, size_t max) {
  const std::string s = testing::slurp(path);
  return s.size() > max ? s.substr(s.size() - max) : s;
}

// One parameter set: a freshly booted guest (protected, then failed over so
// it runs unprotected behind a pass-through proxy), migrated `runs` times,
// each time to a new destination. Stops early when a migration does not
// finish (pre-copy not converging) or the guest no longer answers after one.
Result<Json> run_config(const QemuSideOptions& o, const MigrationRun& cfg, const std::string& tag) {
  Json out;
  Json rig_log;
  FTD_ASSIGN_OR_RETURN(
      auto rig, protected_rig({.guest_dir = o.guest_dir,
                               .memory_mib = o.memory_mib,
                               .append = rig_guest_append(o.memory_mib, o.memload, o.memload_rate),
                               .tag = tag},
                              o.memload, rig_log));
  out["rig"] = rig_log;
  rig->lose_primary();
  if (auto r = rig->failover(); !r) return std::unexpected(r.error().with_context("failover"));
  FTD_ASSIGN_OR_RETURN(
      auto ping,
      testing::PingProbe::start(rig->netns().name(), kGuestIp,
                                "/tmp/ftd-migrate-bench-" + tag + "-ping.log", o.ping_interval_s));
  if (!wait_until([&] { return !ping.report().replies.empty(); }, 30.0))
    return make_error(ErrorCode::kTimeout, "the failed-over guest does not answer ping");
  std::this_thread::sleep_for(1s);

  QmpClient* source = &rig->activator().standby()->process().qmp();
  std::unique_ptr<MigrationTarget> running;  // the current source when it is a target
  Json runs = Json::array();
  for (int i = 0; i < o.runs; ++i) {
    FTD_ASSIGN_OR_RETURN(auto target, MigrationTarget::launch(*rig, fmt::format("m{}", i)));
    FTD_TRY(target->listen());
    FTD_TRY(enable_full_migration(*source));
    double t_running = 0;
    const double t0 = unix_now_s();
    auto m = migrate_once(
        *source, cfg, target->uri(),
        [&]() -> Status {
          FTD_TRY(wait_running(target->qmp(), 30s));
          t_running = unix_now_s();
          return ok();
        },
        o.timeout);
    if (!m) {
      // Pre-copy that does not converge keeps iterating: a result, not a crash.
      cancel(*source);
      out["did_not_finish"] = fmt::format("run {}: {} (cancelled after {} s)", i,
                                          m.error().to_string(), o.timeout.count());
      fmt::print("  qemu {} run {}: did not finish: {}\n", cfg.name, i, m.error().to_string());
      break;
    }
    Json r = *m;
    r["run"] = i;
    r["t_start_unix_s"] = t0;
    r["t_end_unix_s"] = t_running;
    r["migrate_to_running_ms"] = (t_running - t0) * 1e3;
    // Does the guest still answer on the destination? (A client gap needs
    // replies on both sides.)
    r["first_reply_after_running_ms"] = first_reply_after_ms(ping, t_running, 5s);
    fmt::print("  qemu {} run {}: downtime {} ms, total {} ms\n", cfg.name, i,
               json_number(r, "downtime_ms"), json_number(r, "total_time_ms"));
    const bool lost = r["first_reply_after_running_ms"].get<double>() < 0;
    if (lost) {
      // Its console says why (a guest kernel panic after QEMU's migration
      // under memload on TCG was seen here): a result; later runs would
      // migrate a dead guest, so this parameter set ends.
      r["destination_console_tail"] = file_tail(target->serial_log_path(), 800);
      out["guest_lost"] =
          fmt::format("run {}: no ping reply within 5 s after the destination ran", i);
      if (r["destination_console_tail"].get<std::string>().find("Kernel panic") !=
          std::string::npos)
        out["guest_lost_cause"] = kQemuTcgPanicNote;
    }
    runs.push_back(r);
    if (lost) break;
    // The destination is the next source; the old source (postmigrate) goes.
    source = &target->qmp();
    running = std::move(target);
    std::this_thread::sleep_for(1s);
  }
  std::this_thread::sleep_for(500ms);
  FTD_ASSIGN_OR_RETURN(testing::PingReport report, ping.stop());
  add_client_gaps(runs, report);
  out["runs"] = runs;
  out["ping"] = {{"interval_ms", o.ping_interval_s * 1e3}, {"loss_pct", report.loss_pct}};
  return out;
}

}  // namespace

Result<Json> run_qemu_side(const QemuSideOptions& o) {
  Json out;
  for (size_t c = 0; c < o.configs.size(); ++c) {
    FTD_ASSIGN_OR_RETURN(out[o.configs[c].name],
                         run_config(o, o.configs[c], fmt::format("{}c{}", o.tag, c)));
  }
  return out;
}

}  // namespace ftd::bench
