#include "checkpoint/page_scanner.h"

// Explicit *_dispatch calls only; no silent renaming of XXH3_64bits.
#define XXH_DISPATCH_DISABLE_REPLACE 1
#include <xxh_x86dispatch.h>

#include <algorithm>

namespace ftd {
namespace {

// Same value as hash64() (xxh3 is defined independently of vector width), but
// picks AVX2/AVX-512 at run time: Debian's plain XXH3_64bits is a baseline build,
// 4-8 GB/s per core here versus 25-48 GB/s dispatched, which makes the
// difference between a compute-bound and a bandwidth-bound scan.
uint64_t page_hash(const std::byte* data, size_t len) { return XXH3_64bits_dispatch(data, len); }

}  // namespace

PageScanner::PageScanner(size_t page_size, unsigned threads)
    : page_size_(page_size == 0 ? 1 : page_size),
      range_count_(std::max(threads, 1u)),
      dirty_per_range_(range_count_) {
  workers_.reserve(range_count_ - 1);
  for (unsigned i = 1; i < range_count_; ++i) {
    workers_.emplace_back([this, i] { worker_loop(i); });
  }
}

PageScanner::~PageScanner() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void PageScanner::reset() {
  hashes_.clear();
  have_hashes_ = false;
}

void PageScanner::rebase(std::span<const uint32_t> pages, std::span<const std::byte> contents) {
  if (!have_hashes_) return;
  for (size_t i = 0; i < pages.size() && (i + 1) * page_size_ <= contents.size(); ++i) {
    if (pages[i] < hashes_.size())
      hashes_[pages[i]] = page_hash(contents.data() + i * page_size_, page_size_);
  }
}

std::vector<uint32_t> PageScanner::scan(std::span<const std::byte> memory) {
  const size_t pages = (memory.size() + page_size_ - 1) / page_size_;
  const bool all_dirty = !have_hashes_ || hashes_.size() != pages;
  if (hashes_.size() != pages) hashes_.assign(pages, 0);

  {
    std::lock_guard lock(mu_);
    job_ = Job{memory, pages, all_dirty};
    pending_ = range_count_ - 1;
    ++generation_;
  }
  work_cv_.notify_all();
  scan_range(0);
  {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [this] { return pending_ == 0; });
  }
  have_hashes_ = true;

  // Ranges are contiguous and ascending, so concatenation keeps the order.
  size_t total = 0;
  for (const auto& d : dirty_per_range_) total += d.size();
  std::vector<uint32_t> dirty;
  dirty.reserve(total);
  for (const auto& d : dirty_per_range_) dirty.insert(dirty.end(), d.begin(), d.end());
  return dirty;
}

void PageScanner::worker_loop(unsigned index) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    scan_range(index);
    bool last;
    {
      std::lock_guard lock(mu_);
      last = --pending_ == 0;
    }
    if (last) done_cv_.notify_one();
  }
}

void PageScanner::scan_range(unsigned index) {
  const Job& job = job_;
  const size_t begin = job.pages * index / range_count_;
  const size_t end = job.pages * (index + 1) / range_count_;
  auto& dirty = dirty_per_range_[index];
  dirty.clear();
  const std::byte* base = job.memory.data();
  const size_t size = job.memory.size();
  for (size_t p = begin; p < end; ++p) {
    const size_t offset = p * page_size_;
    const size_t len = std::min(page_size_, size - offset);
    const uint64_t h = page_hash(base + offset, len);
    if (job.all_dirty || h != hashes_[p]) dirty.push_back(static_cast<uint32_t>(p));
    hashes_[p] = h;
  }
}

}  // namespace ftd
