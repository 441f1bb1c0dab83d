#include "tracking/pagemap_scan.h"

#include <cerrno>

#include "tracking/kernel_abi.h"

namespace ftd {
namespace {

// Regions per ioctl: written pages come back merged into runs, so a few
// thousand regions cover most epochs in one call.
constexpr size_t kRegionsPerCall = 4096;

}  // namespace

Status pagemap_scan_written(int pagemap_fd, const TrackedRange& range, std::vector<uint32_t>& pages,
                            std::vector<uint64_t>& regions) {
  static_assert(sizeof(page_region) == 3 * sizeof(uint64_t));
  regions.resize(kRegionsPerCall * 3);
  auto* vec = reinterpret_cast<page_region*>(regions.data());
  const uint64_t end = range.start + range.length;
  uint64_t from = range.start;
  while (from < end) {
    pm_scan_arg arg{};
    arg.size = sizeof(arg);
    // Read-and-reprotect in one step; EPERM instead of a silent hole if part
    // of the range is not under async uffd-wp.
    arg.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
    arg.start = from;
    arg.end = end;
    arg.vec = reinterpret_cast<uint64_t>(vec);
    arg.vec_len = kRegionsPerCall;
    arg.category_mask = PAGE_IS_WRITTEN;
    arg.return_mask = PAGE_IS_WRITTEN;
    const int n = ::ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("PAGEMAP_SCAN");
    }
    for (int i = 0; i < n; ++i) {
      for (uint64_t a = vec[i].start; a < vec[i].end; a += range.page_size)
        pages.push_back(static_cast<uint32_t>((a - range.start) / range.page_size));
    }
    // On 6.18 walk_end can stop short of `end` although the walk is done;
    // a vector that did not fill up means the scan finished.
    if (static_cast<size_t>(n) < kRegionsPerCall) break;
    if (arg.walk_end <= from) break;  // no progress: never spin
    from = arg.walk_end;
  }
  return ok();
}

}  // namespace ftd
