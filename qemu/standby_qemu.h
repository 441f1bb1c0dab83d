// The secondary's prelaunched QEMU: same machine as the primary, RAM on the
// replica file (share=on), waiting with `-incoming defer -S`. Activation feeds
// it a device-state blob captured by QmpEngine, then runs the guest.
// QEMU 7.2 exits when an incoming migration fails, so a failed activation
// leaves a dead standby: prelaunch a new one.
#pragma once

#include <chrono>
#include <span>
#include <string>

#include "common/result.h"
#include "qemu/qemu_process.h"

namespace ftd {

struct ActivationTimings {
  double load_ms = 0;  // migrate-incoming + stream + completion
  double cont_ms = 0;
  double announce_ms = 0;  // announce-self (gratuitous ARP/RARP from the NIC)
  double total_ms = 0;
};

class StandbyQemu {
 public:
  StandbyQemu(StandbyQemu&&) noexcept = default;
  StandbyQemu& operator=(StandbyQemu&&) noexcept = default;

  // `config` as for the primary (kernel, memory, NIC...); its ram_file and
  // incoming fields are overridden. The replica file must exist with exactly
  // memory_mib MiB.
  static Result<StandbyQemu> prelaunch(QemuConfig config, const std::string& replica_path);

  // Loads the device state, resumes the guest, announces its NIC.
  Result<ActivationTimings> activate(std::span<const std::byte> device_state,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

  bool activated() const { return activated_; }
  QemuProcess& process() { return qemu_; }
  double start_ms() const { return qemu_.start_ms(); }

 private:
  explicit StandbyQemu(QemuProcess qemu) : qemu_(std::move(qemu)) {}
  Status load_device_state(std::span<const std::byte> device_state, Deadline deadline);

  QemuProcess qemu_;
  bool activated_ = false;
};

// A QEMU migration stream starts with "QEVM" and version 3: a cheap check that
// catches garbage before it reaches (and kills) the standby.
Status check_device_state_header(std::span<const std::byte> device_state);

}  // namespace ftd
