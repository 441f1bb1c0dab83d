// xxh3 over byte spans: page hashes for dirty scanning, checkpoint checksums,
// and RAM-image fingerprints in tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <xxhash.h>

namespace ftd {

inline uint64_t hash64(std::span<const std::byte> data) {
  return XXH3_64bits(data.data(), data.size());
}

}  // namespace ftd
