// The synthetic engine's disk: every kWritesPerDiskWrite-th (32nd) RAM write also
// writes the disk (data or zeroes, size and place drawn from the workload's
// seed). Like the RAM, disk write n is a pure function of (seed, disk size,
// n), so replay() rebuilds the exact image after N of them from zeros (a
// fresh sparse file reads as zeros too): the oracle for the replica disk.
#pragma once

#include <cstdint>
#include <span>

#include "common/mapped_region.h"
#include "common/result.h"
#include "disk/disk_write.h"

namespace ftd {

struct SyntheticDisk {
  static constexpr uint64_t kWritesPerDiskWrite = 32;
  static constexpr uint32_t kSector = 512;
  static constexpr uint32_t kMaxSectorsPerWrite = 16;  // 8 KiB

  // Disk writes done after `ram_writes` RAM writes.
  static uint64_t writes_after(uint64_t ram_writes) { return ram_writes / kWritesPerDiskWrite; }
  // Disk write n (0-based), seq n + 1, with its data.
  static DiskWrite describe(uint64_t seed, uint64_t disk_bytes, uint64_t n);
  // Applies `w` to `image` (the whole disk).
  static void apply(std::span<std::byte> image, const DiskWrite& w);
  // The image after the first `writes` disk writes, from zeros.
  static Result<MappedRegion> replay(uint64_t seed, uint64_t disk_bytes, uint64_t writes);
};

}  // namespace ftd
