// migrate_bench's QEMU side: QEMU's own pre-copy live migration of the same
// test guest (same RAM, same load) between two QEMUs on the qemu_bench rig.
// Per parameter set a fresh guest is booted and protected, failed over (so it
// runs unprotected behind a pass-through proxy), then migrated `runs` times,
// each time to a new destination QEMU (MigrationTarget) over a unix socket,
// while the rig's namespace pings it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/qemu_migration.h"

namespace ftd::bench {

struct QemuSideOptions {
  std::string guest_dir;
  uint64_t memory_mib = 128;
  bool memload = false;
  uint64_t memload_rate = 5000;
  int runs = 10;
  std::vector<MigrationRun> configs;  // name + max-bandwidth + downtime-limit
  std::chrono::seconds timeout{60};   // a migration not completed by then is cancelled
  double ping_interval_s = 0.01;
  std::string tag;  // unique per cell
};

// {<config name>: {rig, runs: [...], ping, did_not_finish?, guest_lost?}}.
Result<nlohmann::json> run_qemu_side(const QemuSideOptions& options);

}  // namespace ftd::bench
