// splitmix64's finalizer: a bijective mix, so distinct inputs give distinct
// streams. The synthetic RAM and disk workloads draw everything from it.
#pragma once

#include <cstdint>

namespace ftd {

constexpr uint64_t synthetic_mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace ftd
