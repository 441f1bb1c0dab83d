// The universal fallback: hash every page (PageScanner, xxh3) of our own
// mapping of the memory and report the pages whose hash changed. Costs
// O(RAM) per collect; reports content changes, not writes (a write of the
// same bytes is not reported, which is all a replica needs).
// Thread contract: one thread calls collect(); counters() from any thread.
#pragma once

#include <span>

#include "checkpoint/page_scanner.h"
#include "tracking/dirty_tracker.h"

namespace ftd {

class ScanTracker final : public DirtyTracker {
 public:
  // `memory` must stay mapped for the tracker's lifetime. The first collect()
  // reports every page (there is nothing to compare with yet).
  ScanTracker(std::span<const std::byte> memory, size_t page_size, unsigned threads)
      : memory_(memory), scanner_(page_size, threads) {}

  std::string_view name() const override { return "scan"; }
  Result<std::vector<uint32_t>> collect() override;
  TrackerCounters counters() const override { return counters_.snapshot(); }

 private:
  std::span<const std::byte> memory_;
  PageScanner scanner_;
  CollectCounters counters_;
};

}  // namespace ftd
