// Finds the dirty pages of a memory region by hashing every page (xxh3) and
// comparing with the hashes of the previous scan. Hashes rather than memcmp
// against a copy: a copy would double the RAM held and the bytes read per scan,
// and the scan runs while the guest is paused, so it must be bandwidth bound.
//
// Work is split into one contiguous page range per thread; the threads are
// started once (the caller's thread takes the first range), so a scan costs
// one wake-up per worker, not a thread creation.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace ftd {

class PageScanner {
 public:
  // `threads` >= 1 (0 is treated as 1); `page_size` > 0. A region whose size is
  // not a multiple of page_size has a partial last page, hashed as it is.
  PageScanner(size_t page_size, unsigned threads);
  ~PageScanner();
  PageScanner(const PageScanner&) = delete;
  PageScanner& operator=(const PageScanner&) = delete;

  // Indices of pages whose content changed since the previous scan, ascending.
  // The first scan, the first after reset(), and a scan of a region whose size
  // differs from the previous one return every page. Not thread-safe: one scan
  // at a time.
  std::vector<uint32_t> scan(std::span<const std::byte> memory);

  // Forgets the hashes: the next scan returns every page.
  void reset();

  // `contents` (pages.size() whole pages, in order) is what was copied for
  // `pages` while the guest ran. Makes those bytes the pages' baseline, so the
  // next scan reports any page that differs from its copy. Without this a
  // page changed after a scan, copied, then changed back (a zeroed page
  // reused and zeroed again) matches the old hash and its copy stays stale.
  // No-op before the first scan (that one reports every page anyway).
  void rebase(std::span<const uint32_t> pages, std::span<const std::byte> contents);

  // Page hashes as of the last scan or rebase (empty before the first / after reset()).
  std::span<const uint64_t> page_hashes() const { return hashes_; }
  size_t page_size() const { return page_size_; }
  unsigned threads() const { return static_cast<unsigned>(workers_.size()) + 1; }

 private:
  struct Job {
    std::span<const std::byte> memory;
    size_t pages = 0;
    bool all_dirty = false;
  };

  void worker_loop(unsigned index);
  // Hashes the pages of range `index` of the current job, recording changes.
  void scan_range(unsigned index);

  size_t page_size_;
  unsigned range_count_;
  std::vector<uint64_t> hashes_;
  bool have_hashes_ = false;
  // One output list per range, reused across scans to avoid reallocating.
  std::vector<std::vector<uint32_t>> dirty_per_range_;

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  Job job_;
  uint64_t generation_ = 0;  // bumped per scan; workers run once per bump
  unsigned pending_ = 0;     // workers still busy with the current generation
  bool stopping_ = false;
  std::vector<std::thread> workers_;  // last member: started after the rest exists
};

}  // namespace ftd
