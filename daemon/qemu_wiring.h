// Wiring of the QEMU engine from the daemon's options: a primary guest behind the
// output-commit network proxy, and the secondary's standby QEMU activator.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "checkpoint/guest_engine.h"
#include "checkpoint/transport.h"
#include "daemon/engine_options.h"
#include "secondary/activator.h"

namespace ftd {

// Launches the guest QEMU (NIC wired to a NetworkProxy on `o.tap`) and
// returns its QmpEngine; the proxy becomes an output gate in `gates`.
Result<std::unique_ptr<GuestEngine>> build_qmp_engine(
    const EngineOptions& o, const std::string& vm, std::vector<std::unique_ptr<OutputGate>>& gates);

// A standby QEMU prelaunched on the replica file (in prepare()), with its NIC
// on a pass-through proxy; activate() loads the device state and runs it.
// With a replica disk (--disk-mib) the standby gets it as the guest's disk
// (<replica_dir>/<vm>.disk, same node names and device as the primary's).
Result<std::unique_ptr<Activator>> build_qmp_activator(const EngineOptions& o,
                                                       const std::string& vm,
                                                       const std::string& replica_dir);

}  // namespace ftd
