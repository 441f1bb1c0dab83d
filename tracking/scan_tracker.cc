#include "tracking/scan_tracker.h"

#include <chrono>

namespace ftd {

Result<std::vector<uint32_t>> ScanTracker::collect() {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<uint32_t> dirty = scanner_.scan(memory_);
  counters_.record(dirty.size(), t0);
  return dirty;
}

}  // namespace ftd
