// Finding the guest QEMU a previous daemon left running: its pid file in the
// VM's run directory, checked through a pidfd (no pid-reuse race) against
// the QMP socket on its command line.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace ftd {

// A pidfd for `pid`, after checking that it is a live QEMU whose command line
// names `qmp_socket_path`. Errors say what is there instead (gone, exited but
// not reaped, another program, another VM's QEMU).
Result<UniqueFd> open_qemu_pidfd(pid_t pid, const std::string& qmp_socket_path);

// True once the process behind `pidfd` exited (zombies included).
bool pidfd_exited(int pidfd);

// What a VM's pid file says.
struct RunDirQemu {
  enum class Kind { kNone, kLive, kStale };
  Kind kind = Kind::kNone;
  pid_t pid = -1;
  std::string detail;  // kNone / kStale: why, for the operator
};

RunDirQemu find_run_dir_qemu(const std::string& pid_file, const std::string& qmp_socket_path);

// The file a QEMU's guest RAM lives in when its backend is
// memory-backend-file (a standby or an activated standby: the replica image),
// read from its command line; nullopt for memfd RAM.
std::optional<std::string> qemu_ram_file(pid_t pid);

}  // namespace ftd
