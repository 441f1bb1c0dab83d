#include "bench/qemu_migration.h"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "qemu/qmp_engine.h"

namespace ftd::bench {

using Json = nlohmann::json;
using namespace std::chrono_literals;

double json_number(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
}

double qemu_total_ms(const Json& m) {
  const double t = json_number(m, "total_time_ms");
  return t > 0 ? t : json_number(m, "wall_ms");
}

std::string guest_dir_or_default(std::string dir) {
  if (!dir.empty()) return dir;
  const char* env = std::getenv("FTD_GUEST_DIR");
  const char* home = std::getenv("HOME");
  return env ? env : std::string(home ? home : "/root") + "/.cache/ftd/guest";
}

Status check_guest_and_root(const std::string& guest_dir, const std::vector<std::string>& files) {
  for (const auto& f : files)
    if (!std::filesystem::exists(guest_dir + "/" + f))
      return make_error(ErrorCode::kNotFound, "{}/{} missing (build the test guest: ninja guest)",
                        guest_dir, f);
  if (::geteuid() != 0)
    return make_error(ErrorCode::kFailedPrecondition, "needs root (network namespaces, taps)");
  return ok();
}

Status check_memload(Rig& rig) {
  FTD_TRY(rig.primary_serial().wait_for("ftd-memload start", 20s));
  std::this_thread::sleep_for(1s);
  for (const auto& l : rig.primary_serial().lines())
    if (l.text.find("Out of memory") != std::string::npos ||
        l.text.find("ftd-memload cannot") != std::string::npos)
      return make_error(ErrorCode::kFailedPrecondition, "guest memload died: {}", l.text);
  return ok();
}

std::string memload_arg(uint64_t memory_mib, uint64_t rate) {
  return fmt::format("ftd.memload={}:{}", std::min<uint64_t>(64, memory_mib / 4), rate);
}

std::string rig_guest_append(uint64_t memory_mib, bool memload, uint64_t memload_rate) {
  std::string a = fmt::format("console=ttyS0 quiet ftd.ip={} ftd.tick=1", kGuestCidr);
  if (memload) a += " " + memload_arg(memory_mib, memload_rate);
  return a;
}

Result<std::unique_ptr<Rig>> protected_rig(RigConfig rc, bool memload, Json& log) {
  const uint64_t mib = rc.memory_mib;
  FTD_ASSIGN_OR_RETURN(auto rig, Rig::create(std::move(rc)));
  FTD_ASSIGN_OR_RETURN(double boot_s, rig->boot(std::chrono::seconds(120)));
  if (memload) FTD_TRY(check_memload(*rig));
  FTD_ASSIGN_OR_RETURN(double sync_s, rig->protect());
  double warm_s = 0;
  const bool steady = rig->wait_steady(30.0 + static_cast<double>(mib) / 16.0, warm_s);
  log = {{"boot_s", boot_s},
         {"initial_sync_s", sync_s},
         {"warmup_s", warm_s},
         {"reached_steady_state", steady}};
  return rig;
}

Status enable_full_migration(QmpClient& qmp) {
  FTD_TRY(qmp.execute(
      "migrate-set-capabilities",
      {{"capabilities", Json::array({{{"capability", "x-ignore-shared"}, {"state", false}},
                                     {{"capability", "events"}, {"state", true}}})}}));
  return ok();
}

namespace {

// After a live run the guest sits in postmigrate, which QEMU refuses to
// migrate again: run it. The MIGRATION "completed" event can precede the
// migration thread's cleanup, when QEMU still refuses `cont` ("not finalized yet").
Status resume_after_migration(QmpClient& qmp) {
  auto resumed = qmp.execute("cont");
  for (int i = 0; i < 100 && !resumed; ++i) {
    std::this_thread::sleep_for(20ms);
    resumed = qmp.execute("cont");
  }
  return resumed ? ok() : Status(std::unexpected(resumed.error()));
}

}  // namespace

Result<Json> migrate_once(QmpClient& qmp, const MigrationRun& run, const std::string& uri,
                          const std::function<Status()>& on_completed,
                          std::chrono::seconds timeout) {
  if (run.max_bandwidth)
    FTD_TRY(qmp.execute("migrate-set-parameters", {{"max-bandwidth", *run.max_bandwidth}}));
  if (run.downtime_limit_ms)
    FTD_TRY(qmp.execute("migrate-set-parameters", {{"downtime-limit", *run.downtime_limit_ms}}));
  FTD_ASSIGN_OR_RETURN(Json set, qmp.execute("query-migrate-parameters"));
  if (run.stopped) FTD_TRY(qmp.execute("stop"));
  qmp.discard_events("MIGRATION");
  const auto t0 = Clock::now();
  FTD_TRY(qmp.execute("migrate", {{"uri", uri}}));
  FTD_TRY(wait_migration_end(qmp, deadline_after(timeout)));
  const double wall = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (on_completed) FTD_TRY(on_completed());
  // query-migrate can still say "active" (no downtime/total-time yet) just
  // after the completion event; ask until it reports the finished state.
  Json q;
  for (int i = 0; i < 100; ++i) {
    FTD_ASSIGN_OR_RETURN(q, qmp.execute("query-migrate"));
    // ... and until its numbers are there (QEMU fills them in after the state).
    if (q.value("status", "") == "completed" && q.contains("total-time") && q.contains("downtime"))
      break;
    std::this_thread::sleep_for(20ms);
  }
  if (q.value("status", "") != "completed" || !q.contains("total-time"))
    return make_error(ErrorCode::kTimeout,
                      "query-migrate status '{}' without total-time after completion event",
                      q.value("status", ""));
  Json r{{"wall_ms", wall},
         {"total_time_ms", json_number(q, "total-time")},
         {"downtime_ms", json_number(q, "downtime")},
         {"setup_time_ms", json_number(q, "setup-time")},
         {"max_bandwidth", json_number(set, "max-bandwidth")},
         {"downtime_limit_ms", json_number(set, "downtime-limit")}};
  if (q.contains("ram")) {
    r["ram_transferred_bytes"] = json_number(q["ram"], "transferred");
    r["ram_total_bytes"] = json_number(q["ram"], "total");
    r["ram_duplicate_pages"] = json_number(q["ram"], "duplicate");
    r["dirty_sync_count"] = json_number(q["ram"], "dirty-sync-count");
    r["mbps"] = json_number(q["ram"], "mbps");
  }
  return r;
}

Result<Json> qemu_migrations(QmpClient& qmp, const std::vector<MigrationRun>& runs) {
  FTD_TRY(enable_full_migration(qmp));
  const std::string uri = "exec:cat > /dev/null";
  Json out{{"uri", uri}};
  for (size_t i = 0; i < runs.size(); ++i) {
    if (i > 0) FTD_TRY(resume_after_migration(qmp));
    FTD_ASSIGN_OR_RETURN(out[runs[i].name], migrate_once(qmp, runs[i], uri));
  }
  return out;
}

}  // namespace ftd::bench
