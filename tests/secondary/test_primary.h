// A primary for replica tests: builds checkpoints the way the pipeline does
// (XOR deltas against a shadow of what the replica holds) and sync chunks
// (absolute pages, no device state), over its own copy of guest memory.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "checkpoint/codec.h"

namespace ftd {

class TestPrimary {
 public:
  static constexpr uint32_t kPage = 4096;

  // `disk_bytes` > 0: every checkpoint also carries disk writes (data and
  // zeroes) to the primary's own disk image, disk().
  explicit TestPrimary(uint64_t seed, uint64_t memory_bytes = 64 * kPage, uint64_t disk_bytes = 0)
      : seed_(seed), rng_(seed), shadow_(memory_bytes), memory_(memory_bytes), disk_(disk_bytes) {}

  // Dirties `n` random pages and encodes epoch `epoch` on `base`.
  std::vector<std::byte> next(uint64_t epoch, uint64_t base, size_t n = 5, uint8_t flags = 0,
                              bool xor_delta = true) {
    std::vector<uint32_t> pages = dirty(n);
    std::vector<std::byte> base_pages;
    for (uint32_t p : pages)
      base_pages.insert(base_pages.end(), shadow_.data() + size_t{p} * kPage,
                        shadow_.data() + size_t{p} * kPage + kPage);
    // The device state names the primary (seed) and the epoch: another
    // history's epoch 3 is not this one's.
    device_.assign(40, std::byte{0});
    std::memcpy(device_.data(), &seed_, sizeof seed_);
    std::memcpy(device_.data() + 8, &epoch, sizeof epoch);
    return encode(
        epoch, base, flags, pages,
        xor_delta ? std::span<const std::byte>(base_pages) : std::span<const std::byte>{});
  }
  // Changes `n` random pages of memory without encoding them (the guest ran
  // while nothing was replicated); returns them sorted.
  std::vector<uint32_t> dirty(size_t n) {
    std::vector<uint32_t> pages;
    while (pages.size() < n) {
      auto p = static_cast<uint32_t>(rng_() % page_count());
      if (std::find(pages.begin(), pages.end(), p) == pages.end()) pages.push_back(p);
    }
    std::sort(pages.begin(), pages.end());
    for (uint32_t p : pages) {
      std::byte* page = memory_.data() + size_t{p} * kPage;
      for (size_t i = 0; i < kPage; i += 64) page[i] = static_cast<std::byte>(rng_());
    }
    return pages;
  }
  // One initial-sync chunk: pages [first, first + count) as they are now.
  std::vector<std::byte> sync_chunk(uint32_t first, uint32_t count) {
    std::vector<uint32_t> pages(count);
    for (uint32_t i = 0; i < count; ++i) pages[i] = first + i;
    return encode(0, 0, kFlagSyncChunk, pages, {});
  }
  // A restarted primary: same guest memory, its own epoch numbering (the tag
  // goes into every device state from now on). Its disk copy starts over too:
  // the next checkpoint carries the whole disk as writes from seq 1, marked
  // incomplete (as QEMU's mirror does before BLOCK_JOB_READY).
  void set_history(uint64_t tag) {
    seed_ = tag;
    next_seq_ = 1;
    copy_disk_ = true;
  }
  const std::vector<std::byte>& disk() const { return disk_; }
  // The replica applied the last checkpoint: the shadow follows.
  void applied() { shadow_ = memory_; }
  const std::vector<std::byte>& memory() const { return memory_; }
  const std::vector<std::byte>& device() const { return device_; }
  uint32_t page_count() const { return static_cast<uint32_t>(memory_.size() / kPage); }

 private:
  std::vector<std::byte> encode(uint64_t epoch, uint64_t base, uint8_t flags,
                                const std::vector<uint32_t>& pages,
                                std::span<const std::byte> base_pages) {
    std::vector<std::byte> contents;
    for (uint32_t p : pages)
      contents.insert(contents.end(), memory_.data() + size_t{p} * kPage,
                      memory_.data() + size_t{p} * kPage + kPage);
    CheckpointInput in{.epoch = epoch,
                       .base_epoch = base,
                       .flags = flags,
                       .page_size = kPage,
                       .page_indices = pages,
                       .pages = contents,
                       .base_pages = base_pages,
                       .device_state = (flags & kFlagSyncChunk) ? std::span<const std::byte>{}
                                                                : std::span(device_)};
    DiskEpoch disk{.disk_size = disk_.size(), .complete = true};
    if (!(flags & kFlagSyncChunk) && !disk_.empty()) disk.writes = disk_writes(disk.complete);
    if (!disk_.empty()) in.disk = &disk;
    std::vector<std::byte> out;
    auto st = encode_checkpoint(in, CompressionPolicy::kAuto, out);
    EXPECT_TRUE(st) << st.error().to_string();
    return out;
  }

  // A few writes of 512 B..16 KiB, one in three zeroes, after the full copy
  // a restart asks for (which leaves the epoch incomplete).
  std::vector<DiskWrite> disk_writes(bool& complete) {
    std::vector<DiskWrite> writes;
    auto add = [&](uint64_t offset, uint32_t length, bool zeroes) {
      DiskWrite w{.seq = next_seq_++, .offset = offset, .length = length};
      if (zeroes) {
        w.kind = DiskWrite::Kind::kZeroes;
        std::memset(disk_.data() + offset, 0, length);
      } else {
        w.data.resize(length);
        std::memcpy(w.data.data(), disk_.data() + offset, length);
      }
      writes.push_back(std::move(w));
    };
    if (copy_disk_) {
      for (uint64_t at = 0; at < disk_.size(); at += 32768)
        add(at, static_cast<uint32_t>(std::min<uint64_t>(32768, disk_.size() - at)), false);
      complete = copy_disk_ = false;
    }
    const uint64_t sectors = disk_.size() / 512;
    for (int i = 0; i < 3; ++i) {
      const uint64_t first = rng_() % sectors;
      const auto length =
          static_cast<uint32_t>(512 * std::min<uint64_t>(1 + rng_() % 32, sectors - first));
      const bool zeroes = rng_() % 3 == 0;
      if (!zeroes)
        for (uint32_t b = 0; b < length; b += 64)
          disk_[first * 512 + b] = static_cast<std::byte>(rng_() | 1);
      add(first * 512, length, zeroes);
    }
    return writes;
  }

  uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<std::byte> shadow_, memory_, device_;
  std::vector<std::byte> disk_;
  uint64_t next_seq_ = 1;
  bool copy_disk_ = false;
};

}  // namespace ftd
