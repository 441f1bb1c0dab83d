// Things several QEMU benchmarks do to a running test guest: check that its
// memory load really runs, and migrate it with QEMU's own live migration
// (to `exec:cat > /dev/null`) with given parameters.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench/qemu_rig.h"
#include "qemu/qmp_client.h"

namespace ftd::bench {

// The load must really run: a buffer too big for the guest gets OOM-killed.
Status check_memload(Rig& rig);

// One QEMU migration of the guest; unset parameters keep QEMU's defaults.
struct MigrationRun {
  std::string name;
  std::optional<uint64_t> max_bandwidth;  // bytes/s
  std::optional<uint64_t> downtime_limit_ms;
  bool stopped = false;  // migrate the stopped guest (QEMU's stop-and-save path)
};

// The guest's memory load argument: min(64, RAM/4) MiB at `rate` pages/s
// (64 MiB in a 128 MiB guest gets OOM-killed).
std::string memload_arg(uint64_t memory_mib, uint64_t rate);
// The test guest's kernel command line for the rig (address, tick, memload).
std::string rig_guest_append(uint64_t memory_mib, bool memload, uint64_t memload_rate);

// A rig booted (memload checked when `memload`), protected and in steady
// state; `log` gets boot/sync/warm-up times.
Result<std::unique_ptr<Rig>> protected_rig(RigConfig config, bool memload, nlohmann::json& log);

// Capabilities for a migration that carries the RAM: x-ignore-shared off
// (ftd's QEMUs have it on), events on.
Status enable_full_migration(QmpClient& qmp);

// One migration of the running guest behind `qmp` to `uri`. `on_completed`
// (if set) runs right after the completion event, before query-migrate is
// read (e.g. to time the destination). Returns {wall_ms, total_time_ms,
// downtime_ms, setup_time_ms, max_bandwidth, downtime_limit_ms, ram_*}.
Result<nlohmann::json> migrate_once(QmpClient& qmp, const MigrationRun& run, const std::string& uri,
                                    const std::function<Status()>& on_completed = {},
                                    std::chrono::seconds timeout = std::chrono::seconds(120));

// Runs each migration in turn on the same QEMU (running it again between
// runs); returns {name: {wall_ms, total_time_ms, downtime_ms, setup_time_ms,
// max_bandwidth, downtime_limit_ms, ram_*}} plus "uri".
Result<nlohmann::json> qemu_migrations(QmpClient& qmp, const std::vector<MigrationRun>& runs);

// The test guest's directory: `dir` if set, else $FTD_GUEST_DIR, else ~/.cache/ftd/guest.
std::string guest_dir_or_default(std::string dir);

// What a QEMU bench needs before it starts: these files in the guest
// directory, and root (network namespaces, taps).
Status check_guest_and_root(const std::string& guest_dir, const std::vector<std::string>& files);

// QEMU's total-time, or where query-migrate reported 0 (it does, "completed"
// with total-time and downtime 0, in about half the runs here) our own clock
// from the migrate command to the completion event (wall_ms; within ~10 ms of
// total-time where both exist).
double qemu_total_ms(const nlohmann::json& migration);

// A number in `j` or 0.
double json_number(const nlohmann::json& j, const char* key);

}  // namespace ftd::bench
