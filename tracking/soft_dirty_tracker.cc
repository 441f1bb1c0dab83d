#include "tracking/soft_dirty_tracker.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include <spdlog/spdlog.h>

#include "tracking/kernel_abi.h"

namespace ftd {

Status clear_soft_dirty(int clear_refs_fd) {
  // "4" = clear soft-dirty bits (Documentation/admin-guide/mm/soft-dirty.rst).
  if (::pwrite(clear_refs_fd, "4", 1, 0) != 1) return errno_error("write clear_refs 4");
  return ok();
}

Result<std::unique_ptr<SoftDirtyTracker>> SoftDirtyTracker::open(const TrackedRange& range) {
  if (range.length == 0 || range.start % range.page_size != 0)
    return make_error(ErrorCode::kInvalidArgument,
                      "soft-dirty range [{:#x}, +{:#x}) not page aligned", range.start,
                      range.length);
  const std::string pagemap_path = fmt::format("/proc/{}/pagemap", range.pid);
  const std::string clear_path = fmt::format("/proc/{}/clear_refs", range.pid);
  UniqueFd pagemap(::open(pagemap_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap) return errno_error("open " + pagemap_path);
  UniqueFd clear_refs(::open(clear_path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!clear_refs) return errno_error("open " + clear_path);
  FTD_TRY(clear_soft_dirty(clear_refs.get()));
  return std::unique_ptr<SoftDirtyTracker>(
      new SoftDirtyTracker(range, std::move(pagemap), std::move(clear_refs)));
}

Result<std::vector<uint32_t>> SoftDirtyTracker::collect() {
  const auto t0 = std::chrono::steady_clock::now();
  const size_t pages = range_.pages();
  entries_.resize(pages);
  const size_t bytes = pages * sizeof(uint64_t);
  const off_t offset = static_cast<off_t>(range_.start / range_.page_size * sizeof(uint64_t));
  size_t done = 0;
  auto* out = reinterpret_cast<char*>(entries_.data());
  while (done < bytes) {
    const ssize_t n =
        ::pread(pagemap_.get(), out + done, bytes - done, offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("pread pagemap");
    if (n == 0) return make_error(ErrorCode::kIo, "short pagemap read ({} of {})", done, bytes);
    done += static_cast<size_t>(n);
  }
  std::vector<uint32_t> dirty;
  for (size_t p = 0; p < pages; ++p)
    if ((entries_[p] >> kPagemapSoftDirtyBit) & 1) dirty.push_back(static_cast<uint32_t>(p));
  FTD_TRY(clear_soft_dirty(clear_refs_.get()));
  counters_.record(dirty.size(), t0);
  return dirty;
}

}  // namespace ftd
