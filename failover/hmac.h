// HMAC-SHA256 (OpenSSL) and shared-key loading for heartbeats and witness
// traffic: both must be authenticated (issue 12), and a truncated or forged
// MAC must never pass, so comparison is constant-time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace ftd {

using Mac = std::array<uint8_t, 32>;
using Key = std::vector<uint8_t>;

Mac hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data);
// Constant-time: a mismatch position must not leak through timing.
bool mac_equal(std::span<const uint8_t> a, std::span<const uint8_t> b);

// A key is ≥ 16 bytes written as hex (whitespace ignored), e.g. made with
// `openssl rand -hex 32 > key`.
Result<Key> parse_hex_key(std::string_view hex);
Result<Key> load_key_file(const std::string& path);

// Fresh random bytes from OpenSSL's CSPRNG (boot ids, nonces).
Result<uint64_t> random_u64();

}  // namespace ftd
