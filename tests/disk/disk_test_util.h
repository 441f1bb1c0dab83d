// Shared by the disk suites: byte patterns that say where they were written,
// and the QEMU suites' private temp directory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tests/qemu/qemu_test_util.h"

namespace ftd::testing {

// `n` bytes that differ per (seed, position), so a misplaced or reordered
// write shows up.
inline std::vector<std::byte> pattern(uint64_t seed, size_t n) {
  std::vector<std::byte> out(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<std::byte>(x);
  }
  return out;
}

}  // namespace ftd::testing
