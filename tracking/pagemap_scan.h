// One PAGEMAP_SCAN pass over a range of another process (Linux >= 6.7): the
// pages written since they were last write-protected, re-protected in the
// same ioctl. Needs an async-WP userfaultfd registered on the whole range.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "tracking/dirty_tracker.h"

namespace ftd {

// Appends to `pages` (ascending) the indices of the written pages of `range`,
// read from `pagemap_fd` (/proc/<pid>/pagemap), and write-protects them again.
// `regions` is scratch space reused across calls.
Status pagemap_scan_written(int pagemap_fd, const TrackedRange& range, std::vector<uint32_t>& pages,
                            std::vector<uint64_t>& regions);

}  // namespace ftd
