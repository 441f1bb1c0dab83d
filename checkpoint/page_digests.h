// Per-page content digests of a RAM image, exchanged so that a sync sends
// only the pages that differ. The secondary digests its replica (whatever
// epoch it is at, even a zeroed new image) and sends the list before
// Welcome; the primary compares against its own pages and skips the equal
// ones (a returning old primary, the far side of a planned migration, the
// zero pages of a fresh guest).
//
// 128-bit xxh3: the digest decides whether a page is copied at all, so a
// collision would leave a wrong page in the replica; at 2^-128 per pair that
// is far below any hardware error rate (64 bits would be 2^-64 per page per
// sync, still fine, but the extra 8 bytes per page cost nothing measurable).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/result.h"

namespace ftd {

struct PageDigest {
  uint64_t low = 0, high = 0;
  bool operator==(const PageDigest&) const = default;
};
inline constexpr size_t kPageDigestBytes = 16;

PageDigest digest_page(std::span<const std::byte> page);
std::vector<PageDigest> digest_pages(std::span<const std::byte> memory, size_t page_size);

// Wire form: kPageDigestBytes per page, little-endian (low, high).
std::string encode_digests(std::span<const PageDigest> digests);
// Appends the digests in `bytes` to `out`; an error if its size is not a
// whole number of digests (nothing appended then).
Status decode_digests(std::string_view bytes, std::vector<PageDigest>& out);

}  // namespace ftd
