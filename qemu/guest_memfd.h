// Finds a running QEMU's guest-RAM memfd through /proc/<pid>/fd, so the
// daemon can map the same pages QEMU's vCPUs write (memory-backend-memfd,share=on).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "common/result.h"
#include "common/unique_fd.h"

namespace ftd {

struct GuestMemfd {
  UniqueFd fd;  // opened read-only through /proc/<pid>/fd/N
  uint64_t size = 0;
  int qemu_fd = -1;  // N, for log lines
};

// Picks the memfd QEMU created for a memory-backend-memfd. With
// `expected_size` it must have that size; otherwise the largest memfd wins.
Result<GuestMemfd> find_guest_memfd(pid_t pid, std::optional<uint64_t> expected_size);

}  // namespace ftd
