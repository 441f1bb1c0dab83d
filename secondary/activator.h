// What "failover" does on the secondary once replication has stopped: turn
// the replica at its last applied epoch into the running VM. Each engine keeps
// its activator beside it: QemuActivator (qemu/) feeds a prelaunched standby
// QEMU; SyntheticActivator (synthetic/) verifies and reports the synthetic
// workload's state.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "checkpoint/running_guest.h"
#include "common/result.h"

namespace ftd {

struct ActivationReport {
  uint64_t epoch = 0;
  uint64_t activation_us = 0;  // from "go" to the guest running
  std::string detail;          // human-readable breakdown
};

class Activator {
 public:
  virtual ~Activator() = default;
  virtual std::string name() const = 0;
  // Called once the replica file exists (e.g. to prelaunch a standby on it).
  virtual Status prepare(const std::string& replica_ram_path) { return ok(); }
  // `memory` is the replica image, `device_state` the blob of `epoch`.
  virtual Result<ActivationReport> activate(uint64_t epoch, std::span<const std::byte> memory,
                                            std::span<const std::byte> device_state) = 0;
  // After a successful activate(), once: hands the running guest over so it
  // can be protected in turn (re-protection to another host).
  virtual Result<RunningGuest> take_running_guest() {
    return make_error(ErrorCode::kUnimplemented,
                      "the {} engine cannot protect an activated replica", name());
  }
};

}  // namespace ftd
