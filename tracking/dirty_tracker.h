// Which pages of a process's memory range were written since the last look.
// Backends: uffd-wp (userfaultfd async write-protect + PAGEMAP_SCAN),
// soft-dirty (clear_refs + pagemap bit 55), scan (page hashes). Chosen at run
// time by choose_tracker() (tracker_probe.h); AuditedTracker checks any of
// them against page hashes now and then.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ftd {

// The memory a tracker watches: `length` bytes at `start` in process `pid`'s
// address space. Page indices reported are relative to `start`.
struct TrackedRange {
  pid_t pid = -1;
  uint64_t start = 0;
  uint64_t length = 0;
  size_t page_size = 4096;

  size_t pages() const { return static_cast<size_t>((length + page_size - 1) / page_size); }
};

// What a tracker did so far; a snapshot (for status and benchmarks).
struct TrackerCounters {
  uint64_t collections = 0;
  uint64_t pages_reported = 0;
  uint64_t last_collect_us = 0;
  uint64_t max_collect_us = 0;
  // Filled by AuditedTracker.
  uint64_t audits = 0;
  uint64_t audit_misses = 0;  // audits that found a changed page the tracker did not report
  uint64_t missed_pages = 0;
  uint64_t full_epochs = 0;  // epochs that reported every page after a miss
};

class DirtyTracker {
 public:
  virtual ~DirtyTracker() = default;
  virtual std::string_view name() const = 0;  // "uffd-wp", "soft-dirty", "scan"
  // Indices of the pages written since the previous call (since creation for
  // the first), ascending, with tracking re-armed for them in the same step.
  // Call it while the writers are paused: only uffd-wp reads and re-arms
  // atomically; soft-dirty and scan would lose a write landing mid-call.
  virtual Result<std::vector<uint32_t>> collect() = 0;
  virtual TrackerCounters counters() const = 0;
};

// Counters one collect() thread updates and any thread reads.
class CollectCounters {
 public:
  // One collect() that began at `started` and reported `pages`.
  void record(size_t pages, std::chrono::steady_clock::time_point started) {
    const auto us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                              std::chrono::steady_clock::now() - started)
                                              .count());
    collections_.fetch_add(1, std::memory_order_relaxed);
    pages_.fetch_add(pages, std::memory_order_relaxed);
    last_us_.store(us, std::memory_order_relaxed);
    if (us > max_us_.load(std::memory_order_relaxed)) max_us_.store(us, std::memory_order_relaxed);
  }
  TrackerCounters snapshot() const {
    return {.collections = collections_.load(std::memory_order_relaxed),
            .pages_reported = pages_.load(std::memory_order_relaxed),
            .last_collect_us = last_us_.load(std::memory_order_relaxed),
            .max_collect_us = max_us_.load(std::memory_order_relaxed)};
  }

 private:
  std::atomic<uint64_t> collections_{0};
  std::atomic<uint64_t> pages_{0};
  std::atomic<uint64_t> last_us_{0};
  std::atomic<uint64_t> max_us_{0};
};

}  // namespace ftd
