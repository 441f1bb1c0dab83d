#include "synthetic/synthetic_disk.h"

#include "synthetic/mix.h"

#include <algorithm>
#include <cstring>

namespace ftd {
namespace {

constexpr uint64_t mix(uint64_t x) { return synthetic_mix(x); }

}  // namespace

DiskWrite SyntheticDisk::describe(uint64_t seed, uint64_t disk_bytes, uint64_t n) {
  const uint64_t key = mix(seed ^ mix(n + 0x6469736b00000000ull));  // "disk"
  const uint64_t sectors = disk_bytes / kSector;
  const uint64_t first = mix(key + 1) % sectors;
  const uint64_t count =
      std::min<uint64_t>(1 + mix(key + 2) % kMaxSectorsPerWrite, sectors - first);
  DiskWrite w{
      .seq = n + 1, .offset = first * kSector, .length = static_cast<uint32_t>(count * kSector)};
  // One write in four zeroes its range (TRIM / WRITE_ZEROES on a real disk).
  if (mix(key + 3) % 4 == 0) {
    w.kind = DiskWrite::Kind::kZeroes;
    return w;
  }
  w.data.resize(w.length);
  for (size_t at = 0; at < w.length; at += 8) {
    const uint64_t word = mix(key + 16 + at / 8);
    std::memcpy(w.data.data() + at, &word, 8);
  }
  return w;
}

void SyntheticDisk::apply(std::span<std::byte> image, const DiskWrite& w) {
  std::byte* dst = image.data() + w.offset;
  if (w.kind == DiskWrite::Kind::kZeroes)
    std::memset(dst, 0, w.length);
  else
    std::memcpy(dst, w.data.data(), w.length);
}

Result<MappedRegion> SyntheticDisk::replay(uint64_t seed, uint64_t disk_bytes, uint64_t writes) {
  FTD_ASSIGN_OR_RETURN(MappedRegion image, MappedRegion::anonymous(disk_bytes));
  for (uint64_t n = 0; n < writes; ++n) apply(image.bytes(), describe(seed, disk_bytes, n));
  return image;
}

}  // namespace ftd
