// What failing over means for a QEMU guest: a StandbyQemu prelaunched on the
// replica file (prepare()) is fed the replica's device state and run
// (activate()). Its NIC sits on a pass-through proxy, because after failover
// this host owns the VM and its output is not held.
//
// Thread contract: prepare() and activate() are called by one thread at a
// time (SecondaryVm serialises them); standby()/timings() by that thread after
// activate() returned.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "net/network_proxy.h"
#include "qemu/qmp_engine.h"
#include "qemu/standby_qemu.h"
#include "secondary/activator.h"

namespace ftd {

class QemuActivator final : public Activator {
 public:
  // `nic_proxy` may be null when the caller keeps the standby's NIC itself.
  // `engine_options`: how take_running_guest() drives the activated QEMU.
  QemuActivator(QemuConfig config, std::unique_ptr<net::NetworkProxy> nic_proxy,
                QmpEngineOptions engine_options = {})
      : config_(std::move(config)),
        proxy_(std::move(nic_proxy)),
        engine_options_(std::move(engine_options)) {}

  std::string name() const override { return "qmp"; }
  Status prepare(const std::string& replica_ram_path) override;
  Result<ActivationReport> activate(uint64_t epoch, std::span<const std::byte> memory,
                                    std::span<const std::byte> device_state) override;
  // The activated standby as a QmpEngine (RAM: the replica file) and its NIC
  // proxy as the output gate, still passing output through.
  Result<RunningGuest> take_running_guest() override;

  // The standby QEMU (running after a successful activate()), e.g. to measure it.
  StandbyQemu* standby() { return standby_ ? &*standby_ : nullptr; }
  const std::optional<ActivationTimings>& timings() const { return timings_; }

 private:
  QemuConfig config_;
  std::unique_ptr<net::NetworkProxy> proxy_;  // before standby_: outlives its QEMU
  QmpEngineOptions engine_options_;
  std::string replica_path_;
  std::optional<StandbyQemu> standby_;
  std::optional<ActivationTimings> timings_;
};

}  // namespace ftd
