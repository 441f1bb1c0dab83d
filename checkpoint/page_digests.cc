#include "checkpoint/page_digests.h"

#include <bit>
#include <cstring>

namespace ftd {
namespace {

// x86-64 and every target ftd builds for are little-endian: the wire form is
// the in-memory form of two uint64_t.
static_assert(std::endian::native == std::endian::little);

}  // namespace

PageDigest digest_page(std::span<const std::byte> page) {
  const XXH128_hash_t h = XXH3_128bits_dispatch(page.data(), page.size());
  return {.low = h.low64, .high = h.high64};
}

std::vector<PageDigest> digest_pages(std::span<const std::byte> memory, size_t page_size) {
  std::vector<PageDigest> out(memory.size() / page_size);
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = digest_page(memory.subspan(i * page_size, page_size));
  return out;
}

std::string encode_digests(std::span<const PageDigest> digests) {
  std::string out(digests.size() * kPageDigestBytes, '\0');
  for (size_t i = 0; i < digests.size(); ++i) {
    std::memcpy(out.data() + i * kPageDigestBytes, &digests[i].low, 8);
    std::memcpy(out.data() + i * kPageDigestBytes + 8, &digests[i].high, 8);
  }
  return out;
}

Status decode_digests(std::string_view bytes, std::vector<PageDigest>& out) {
  if (bytes.size() % kPageDigestBytes != 0)
    return make_error(ErrorCode::kInvalidArgument,
                      "page digest list of {} bytes is not a multiple of {}", bytes.size(),
                      kPageDigestBytes);
  const size_t n = bytes.size() / kPageDigestBytes;
  out.reserve(out.size() + n);
  for (size_t i = 0; i < n; ++i) {
    PageDigest d;
    std::memcpy(&d.low, bytes.data() + i * kPageDigestBytes, 8);
    std::memcpy(&d.high, bytes.data() + i * kPageDigestBytes + 8, 8);
    out.push_back(d);
  }
  return ok();
}

}  // namespace ftd
