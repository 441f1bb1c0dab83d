// Checks a tracker against page hashes now and then. Every `every_epochs`
// collects it hashes all pages (the baseline) right after the inner
// tracker re-armed; at the next collect it hashes again and every page whose
// content changed must be in the inner tracker's set. A page that is not is a
// miss: logged as `tracking.audit_miss` (error), counted, and that epoch
// reports every page, because a tracker that missed once may have missed in
// the epochs nobody audited, and only a full resend repairs the replica.
// Cost: two full hashes per audit (~18 ms each at 512 MiB here).
// Thread contract: one thread calls collect(); counters() from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <span>

#include "checkpoint/page_scanner.h"
#include "tracking/dirty_tracker.h"

namespace ftd {

struct AuditOptions {
  uint64_t every_epochs = 100;  // 0: never audit
  unsigned hash_threads = 1;
};

class AuditedTracker final : public DirtyTracker {
 public:
  // `memory` is this process's mapping of the tracked pages (same page
  // indices); it must outlive the tracker.
  AuditedTracker(std::unique_ptr<DirtyTracker> inner, std::span<const std::byte> memory,
                 size_t page_size, AuditOptions options);

  std::string_view name() const override { return inner_->name(); }
  Result<std::vector<uint32_t>> collect() override;
  TrackerCounters counters() const override;

 private:
  // Compares the hashes with the baseline; returns the pages changed but not in `tracked`.
  std::vector<uint32_t> audit(const std::vector<uint32_t>& tracked);

  std::unique_ptr<DirtyTracker> inner_;
  std::span<const std::byte> memory_;
  size_t page_size_;
  AuditOptions options_;
  PageScanner scanner_;
  uint64_t epoch_ = 0;
  bool baseline_taken_ = false;
  std::atomic<uint64_t> audits_{0};
  std::atomic<uint64_t> audit_misses_{0};
  std::atomic<uint64_t> missed_pages_{0};
  std::atomic<uint64_t> full_epochs_{0};
};

}  // namespace ftd
