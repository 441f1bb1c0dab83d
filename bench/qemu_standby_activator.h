// The secondary's failover for qemu_bench: a StandbyQemu prelaunched on the
// replica file when the SecondaryVm opens, activated with the replica's device
// state. Unlike the daemon's activator it lends the running standby out, so
// the benchmark can measure the guest after failover (unprotected baseline,
// QEMU's own migration of the very same guest).
#pragma once

#include <optional>

#include <spdlog/spdlog.h>

#include "failover/activator.h"
#include "qemu/standby_qemu.h"

namespace ftd::bench {

class StandbyActivator : public Activator {
 public:
  explicit StandbyActivator(QemuConfig config) : config_(std::move(config)) {}
  std::string name() const override { return "qmp-standby"; }

  Status prepare(const std::string& replica_ram_path) override {
    FTD_ASSIGN_OR_RETURN(auto standby, StandbyQemu::prelaunch(config_, replica_ram_path));
    spdlog::info("bench.standby.ready pid={} start_ms={:.0f}", standby.process().pid(),
                 standby.start_ms());
    standby_.emplace(std::move(standby));
    return ok();
  }

  Result<ActivationReport> activate(uint64_t epoch, std::span<const std::byte>,
                                    std::span<const std::byte> device_state) override {
    if (!standby_) return make_error(ErrorCode::kFailedPrecondition, "no standby prelaunched");
    FTD_ASSIGN_OR_RETURN(timings_, standby_->activate(device_state));
    return ActivationReport{.epoch = epoch,
                            .activation_us = static_cast<uint64_t>(timings_->total_ms * 1000),
                            .detail = "standby QEMU running"};
  }

  // The standby QEMU (running after a successful activate()).
  StandbyQemu* standby() { return standby_ ? &*standby_ : nullptr; }
  const std::optional<ActivationTimings>& timings() const { return timings_; }

 private:
  QemuConfig config_;
  std::optional<StandbyQemu> standby_;
  std::optional<ActivationTimings> timings_;
};

}  // namespace ftd::bench
