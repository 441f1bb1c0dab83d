// NBD wire constants (the subset ftd's server speaks) and big-endian helpers.
// Source: the NBD protocol specification (nbd/doc/proto.md); every number is
// on the wire in network byte order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ftd::nbd {

// Handshake (fixed newstyle).
inline constexpr uint64_t kMagic = 0x4e42444d41474943;     // "NBDMAGIC"
inline constexpr uint64_t kOptMagic = 0x49484156454F5054;  // "IHAVEOPT"
inline constexpr uint64_t kOptReplyMagic = 0x3e889045565a9;
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
inline constexpr uint32_t kClientFlagsKnown = kFlagFixedNewstyle | kFlagNoZeroes;

inline constexpr uint32_t kOptExportName = 1;
inline constexpr uint32_t kOptAbort = 2;
inline constexpr uint32_t kOptList = 3;
inline constexpr uint32_t kOptInfo = 6;
inline constexpr uint32_t kOptGo = 7;

inline constexpr uint32_t kRepAck = 1;
inline constexpr uint32_t kRepServer = 2;
inline constexpr uint32_t kRepInfo = 3;
inline constexpr uint32_t kRepErrUnsup = (1u << 31) + 1;
inline constexpr uint32_t kRepErrInvalid = (1u << 31) + 3;
inline constexpr uint32_t kRepErrUnknown = (1u << 31) + 6;

inline constexpr uint16_t kInfoExport = 0;
inline constexpr uint16_t kInfoBlockSize = 3;

// Transmission flags.
inline constexpr uint16_t kFlagHasFlags = 1 << 0;
inline constexpr uint16_t kFlagSendFlush = 1 << 2;
inline constexpr uint16_t kFlagSendTrim = 1 << 5;
inline constexpr uint16_t kFlagSendWriteZeroes = 1 << 6;

// Transmission.
inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;
inline constexpr size_t kRequestHeaderSize = 28;
inline constexpr size_t kSimpleReplySize = 16;

enum class Command : uint16_t {
  kRead = 0,
  kWrite = 1,
  kDisconnect = 2,
  kFlush = 3,
  kTrim = 4,
  kWriteZeroes = 6,
};

// Errors in replies (errno values fixed by the spec, not the host's).
inline constexpr uint32_t kEio = 5;
inline constexpr uint32_t kEinval = 22;
inline constexpr uint32_t kEnospc = 28;

inline uint64_t load_be(std::span<const std::byte> b, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}
inline void store_be(std::span<std::byte> b, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) b[n - 1 - i] = static_cast<std::byte>(v >> (8 * i));
}

}  // namespace ftd::nbd
