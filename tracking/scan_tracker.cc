#include "tracking/scan_tracker.h"

#include <chrono>

namespace ftd {

Result<std::vector<uint32_t>> ScanTracker::collect() {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<uint32_t> dirty = scanner_.scan(memory_);
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  counters_.record(dirty.size(), static_cast<uint64_t>(us));
  return dirty;
}

}  // namespace ftd
