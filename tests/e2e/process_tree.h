// Finding the QEMU a daemon under test launched, so the test can kill the
// "primary host" (QEMU + ftd) and never leaves a QEMU behind (QEMU outlives a
// SIGKILLed ftd: nothing ties its life to its parent).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ftd::testing {

// Direct children of `parent` (from /proc/<parent>/task/*/children).
std::vector<pid_t> child_pids(pid_t parent);

// Children of `parent` whose command name starts with "qemu-system".
std::vector<pid_t> qemu_children(pid_t parent);

// SIGKILLs `pid` if it is still a QEMU process (guards against pid reuse); true if signalled.
bool kill_if_qemu(pid_t pid);

// Remembers QEMU pids launched by daemons we started; SIGKILLs the survivors on destruction.
class QemuReaper {
 public:
  QemuReaper() = default;
  QemuReaper(const QemuReaper&) = delete;
  QemuReaper& operator=(const QemuReaper&) = delete;
  ~QemuReaper();
  void adopt_children_of(pid_t daemon);

 private:
  std::vector<pid_t> pids_;
};

}  // namespace ftd::testing
