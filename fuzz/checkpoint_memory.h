// The replica image the checkpoint decoder fuzzer resolves XOR deltas
// against, and the seed generator encodes deltas for: 64 KiB (16 pages of
// 4 KiB, or 256 of 256 B) of a fixed pattern, built once and never written.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace ftd::fuzz {

inline constexpr size_t kCheckpointMemoryBytes = 64 * 1024;

inline std::span<const std::byte> checkpoint_memory() {
  static const std::vector<std::byte> memory = [] {
    std::vector<std::byte> m(kCheckpointMemoryBytes);
    for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<std::byte>((i * 131) ^ (i >> 9));
    return m;
  }();
  return memory;
}

}  // namespace ftd::fuzz
