// The destination of QEMU's own live migration between two QEMUs on the
// qemu_bench rig: a second QEMU of the same guest, started with `-incoming
// defer` on a RAM file in /dev/shm, its NIC on a pass-through proxy whose
// tap sits on the rig's bridge (so the rig's namespace keeps pinging the
// guest wherever it runs). Waits on a unix socket for the migration stream.
// Lifetime: owns the QEMU (killed on destruction), then the proxy and the file.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "bench/qemu_rig.h"
#include "qemu/standby_qemu.h"

namespace ftd::bench {

class MigrationTarget {
 public:
  // `name` must be unique within the rig and short (tap name "tap<name>").
  static Result<std::unique_ptr<MigrationTarget>> launch(Rig& rig, const std::string& name);
  ~MigrationTarget();
  MigrationTarget(const MigrationTarget&) = delete;
  MigrationTarget& operator=(const MigrationTarget&) = delete;

  // Listens for the stream (migrate-incoming) and arms autostart (`cont`
  // while in-migrate): the guest runs as soon as QEMU has loaded it, as a
  // destination started without -S would.
  Status listen();
  const std::string& uri() const { return uri_; }
  QmpClient& qmp() { return qemu_->process().qmp(); }
  // The guest's console as this QEMU wrote it.
  const std::string& serial_log_path() const { return serial_log_path_; }

 private:
  MigrationTarget() = default;

  std::unique_ptr<net::NetworkProxy> proxy_;  // outlives its QEMU
  std::string ram_path_;
  std::optional<StandbyQemu> qemu_;
  std::string uri_;
  std::string serial_log_path_;
};

}  // namespace ftd::bench
