// Dirty tracking through a userfaultfd in asynchronous write-protect mode on
// another process's range: the kernel marks a page "written" on the first
// write after protection (no fault message, no stop), and one PAGEMAP_SCAN
// per epoch returns the written pages and re-protects them atomically.
// The uffd must have been created inside the target (it belongs to the mm
// that created it): QEMU gets one from libftd_uffd_preload.so.
// Thread contract: one thread calls collect(); counters() from any thread.
#pragma once

#include <memory>

#include "common/unique_fd.h"
#include "tracking/dirty_tracker.h"

namespace ftd {

class UffdWpTracker final : public DirtyTracker {
 public:
  // Takes fd `uffd_in_target` of range.pid, enables async WP, registers the
  // range and write-protects it: collect() reports writes from now on.
  static Result<std::unique_ptr<UffdWpTracker>> attach(const TrackedRange& range,
                                                       int uffd_in_target);
  // Same with a uffd already held (created by the target's mm).
  static Result<std::unique_ptr<UffdWpTracker>> arm(const TrackedRange& range, UniqueFd uffd);

  std::string_view name() const override { return "uffd-wp"; }
  Result<std::vector<uint32_t>> collect() override;
  TrackerCounters counters() const override { return counters_.snapshot(); }

 private:
  UffdWpTracker(TrackedRange range, UniqueFd uffd, UniqueFd pagemap)
      : range_(range), uffd_(std::move(uffd)), pagemap_(std::move(pagemap)) {}

  TrackedRange range_;
  UniqueFd uffd_;  // keeps the registration alive
  UniqueFd pagemap_;
  std::vector<uint64_t> regions_;  // PAGEMAP_SCAN output, reused
  CollectCounters counters_;
};

}  // namespace ftd
