// Re-attaching a restarted daemon to the guest QEMU its predecessor launched
// and left running (the predecessor crashed or was SIGKILLed; QEMU lives in
// its own session and keeps its pid file, QMP and NIC sockets in the VM's run
// directory).
#pragma once

#include "qemu/qemu_config.h"
#include "qemu/qemu_process.h"

namespace ftd {

// Finds the QEMU named by config.pid_file, checks it is this VM's (pidfd +
// command line naming config.qmp_socket_path), connects QMP, maps guest RAM,
// and cancels a device-state capture the predecessor died in (QEMU is then
// left stopped: the first checkpoint resumes it). The QEMU is adopted: it
// ends with the returned object. Errors are meant for the operator: no pid
// file, a stale one (QEMU gone), another program behind the pid, other RAM size.
Result<QemuProcess> reattach_to_run_dir_qemu(const QemuConfig& config);

// Before a standby is launched in a run directory: a QEMU still named by
// config.pid_file was left by a daemon that died. A standby that never ran
// (QMP status inmigrate/prelaunch) holds nothing and is killed; a guest that
// runs (an activated standby: the VM itself) is never touched: error, naming
// --reattach. No pid file or a stale one: ok.
Status retire_leftover_standby(const QemuConfig& config);

}  // namespace ftd
