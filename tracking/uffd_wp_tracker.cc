#include "tracking/uffd_wp_tracker.h"

#include <fcntl.h>

#include <chrono>

#include <spdlog/spdlog.h>

#include "tracking/pagemap_scan.h"
#include "tracking/uffd.h"

namespace ftd {

Result<std::unique_ptr<UffdWpTracker>> UffdWpTracker::attach(const TrackedRange& range,
                                                             int uffd_in_target) {
  FTD_ASSIGN_OR_RETURN(UniqueFd uffd, take_fd_from(range.pid, uffd_in_target));
  return arm(range, std::move(uffd));
}

Result<std::unique_ptr<UffdWpTracker>> UffdWpTracker::arm(const TrackedRange& range,
                                                          UniqueFd uffd) {
  if (range.length == 0 || range.start % range.page_size != 0)
    return make_error(ErrorCode::kInvalidArgument, "uffd-wp range [{:#x}, +{:#x}) not page aligned",
                      range.start, range.length);
  const std::string pagemap_path = fmt::format("/proc/{}/pagemap", range.pid);
  UniqueFd pagemap(::open(pagemap_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap) return errno_error("open " + pagemap_path);
  if (auto api = uffd_enable_wp_async(uffd.get()); !api) {
    // UFFDIO_API succeeds once per userfaultfd. A daemon re-attaching to a
    // QEMU whose previous daemon armed this uffd (always with WP_ASYNC, so the
    // guest never blocked on it) finds it negotiated: registering again works
    // then, and on a never-negotiated uffd it fails, keeping the API error.
    if (!uffd_register_wp(uffd.get(), range.start, range.length))
      return std::unexpected(api.error());
    spdlog::info("tracking.uffd_wp.rearmed pid={} why=\"uffd negotiated by an earlier daemon\"",
                 range.pid);
  } else {
    FTD_TRY(uffd_register_wp(uffd.get(), range.start, range.length));
  }
  FTD_TRY(uffd_write_protect(uffd.get(), range.start, range.length));
  spdlog::debug("tracking.uffd_wp.armed pid={} start={:#x} bytes={}", range.pid, range.start,
                range.length);
  return std::unique_ptr<UffdWpTracker>(
      new UffdWpTracker(range, std::move(uffd), std::move(pagemap)));
}

Result<std::vector<uint32_t>> UffdWpTracker::collect() {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<uint32_t> pages;
  FTD_TRY(pagemap_scan_written(pagemap_.get(), range_, pages, regions_));
  counters_.record(pages.size(), t0);
  return pages;
}

}  // namespace ftd
