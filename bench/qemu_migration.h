// Things several QEMU benchmarks do to a running test guest: check that its
// memory load really runs, and migrate it with QEMU's own live migration
// (to `exec:cat > /dev/null`) with given parameters.
#pragma once

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

// Runs each migration in turn on the same QEMU (running it again between
// runs); returns {name: {wall_ms, total_time_ms, downtime_ms, setup_time_ms,
// max_bandwidth, downtime_limit_ms, ram_*}} plus "uri".
Result<nlohmann::json> qemu_migrations(QmpClient& qmp, const std::vector<MigrationRun>& runs);

// The test guest's directory: `dir` if set, else $FTD_GUEST_DIR, else ~/.cache/ftd/guest.
std::string guest_dir_or_default(std::string dir);

// A number in `j` or 0.
double json_number(const nlohmann::json& j, const char* key);

}  // namespace ftd::bench
