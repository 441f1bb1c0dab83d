// Helpers for forging encoded checkpoints in codec tests: change header or
// record fields, then make the checksum match (xxh3 is no MAC: a forger can).
#pragma once

#include <cstring>
#include <vector>

#include "common/hash.h"

namespace ftd {

// Overwrites the trailing checksum so it matches the (forged) bytes before it.
inline void reseal(std::vector<std::byte>& enc) {
  uint64_t h = hash64(std::span(enc).first(enc.size() - 8));
  std::memcpy(enc.data() + enc.size() - 8, &h, 8);
}
template <typename T>
void poke(std::vector<std::byte>& enc, size_t offset, T v) {
  std::memcpy(enc.data() + offset, &v, sizeof v);
}

}  // namespace ftd
