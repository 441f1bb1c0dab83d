// Picks and arms the dirty tracker for a QEMU's guest RAM (tracking/): finds
// QEMU's mapping of the memfd, checks the configuration for ways a
// page-table tracker could miss writes, and hands both to choose_tracker().
#pragma once

#include "qemu/qemu_process.h"
#include "tracking/tracker_probe.h"

namespace ftd {

Result<TrackerChoice> choose_qemu_tracker(QemuProcess& qemu, const TrackingOptions& options,
                                          const KernelProbes& probes = {});

// Everything that could make a page-table tracker miss writes of this QEMU.
MissRiskReport qemu_miss_risks(QemuProcess& qemu);

}  // namespace ftd
