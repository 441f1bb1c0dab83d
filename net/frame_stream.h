// QEMU's `-netdev stream` wire format: every Ethernet frame travels as a
// 4-byte big-endian length followed by the frame bytes (no vnet header).
// Verified against QEMU's net_fill_rstate(): the receiver's buffer is
// NET_BUFSIZE (4096 + 65536) bytes, so longer frames are never valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"

namespace ftd::net {

inline constexpr size_t kFrameLengthBytes = 4;
inline constexpr size_t kMaxFrameBytes = 4096 + 65536;

using FrameBytes = std::vector<uint8_t>;

// Appends `frame` in stream framing to `out`. Error for empty or oversized frames
// (QEMU would treat them as a corrupt stream); `out` is unchanged then.
Status append_encoded_frame(std::span<const uint8_t> frame, std::vector<uint8_t>& out);
Result<std::vector<uint8_t>> encode_frame(std::span<const uint8_t> frame);

// Reassembles frames from arbitrary read chunks (a frame may be split anywhere,
// even inside the length prefix). A zero or oversized length means the stream
// is corrupt: feed() returns kCorrupt and the decoder refuses further input
// until reset(), because the frame boundaries are lost for good.
class FrameDecoder {
 public:
  // Appends every frame completed by `bytes` to `frames`. Frames completed before
  // a corrupt length in the same chunk are still delivered.
  Status feed(std::span<const uint8_t> bytes, std::vector<FrameBytes>& frames);

  // Bytes of an unfinished frame (prefix included) held across feed() calls.
  size_t pending_bytes() const {
    return in_body_ ? kFrameLengthBytes + body_.size() : header_fill_;
  }
  bool corrupt() const { return corrupt_; }
  void reset();

 private:
  uint8_t header_[kFrameLengthBytes] = {};
  size_t header_fill_ = 0;
  bool in_body_ = false;
  size_t body_len_ = 0;
  FrameBytes body_;
  bool corrupt_ = false;
};

}  // namespace ftd::net
