// Dirty tracking through the kernel's soft-dirty bits (CONFIG_MEM_SOFT_DIRTY,
// on in Debian's and RHEL's stock kernels): writing "4" to
// /proc/<pid>/clear_refs clears them (and write-protects the PTEs), a write
// sets bit 55 of the page's /proc/<pid>/pagemap entry again. Reading and
// clearing are two steps, so collect() needs the target's writers paused;
// clear_refs covers the whole process, so its cost follows QEMU's RSS.
// Thread contract: one thread calls collect(); counters() from any thread.
#pragma once

#include <memory>

#include "common/unique_fd.h"
#include "tracking/dirty_tracker.h"

namespace ftd {

class SoftDirtyTracker final : public DirtyTracker {
 public:
  // Opens the target's pagemap and clear_refs and clears the bits once.
  static Result<std::unique_ptr<SoftDirtyTracker>> open(const TrackedRange& range);

  std::string_view name() const override { return "soft-dirty"; }
  Result<std::vector<uint32_t>> collect() override;
  TrackerCounters counters() const override { return counters_.snapshot(); }

 private:
  SoftDirtyTracker(TrackedRange range, UniqueFd pagemap, UniqueFd clear_refs)
      : range_(range), pagemap_(std::move(pagemap)), clear_refs_(std::move(clear_refs)) {}

  TrackedRange range_;
  UniqueFd pagemap_;
  UniqueFd clear_refs_;
  std::vector<uint64_t> entries_;  // pagemap entries of the range, reused
  CollectCounters counters_;
};

// Clears the soft-dirty bits of every page of `clear_refs_fd`'s process.
Status clear_soft_dirty(int clear_refs_fd);

}  // namespace ftd
