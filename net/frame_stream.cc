#include "net/frame_stream.h"

#include <algorithm>

namespace ftd::net {

Status append_encoded_frame(std::span<const uint8_t> frame, std::vector<uint8_t>& out) {
  if (frame.empty()) return make_error(ErrorCode::kInvalidArgument, "empty frame");
  if (frame.size() > kMaxFrameBytes) {
    return make_error(ErrorCode::kInvalidArgument, "frame of {} bytes exceeds {}", frame.size(),
                      kMaxFrameBytes);
  }
  const auto n = static_cast<uint32_t>(frame.size());
  const uint8_t prefix[kFrameLengthBytes] = {static_cast<uint8_t>(n >> 24),
                                             static_cast<uint8_t>(n >> 16),
                                             static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  out.insert(out.end(), prefix, prefix + kFrameLengthBytes);
  out.insert(out.end(), frame.begin(), frame.end());
  return ok();
}

Result<std::vector<uint8_t>> encode_frame(std::span<const uint8_t> frame) {
  std::vector<uint8_t> out;
  out.reserve(frame.size() + kFrameLengthBytes);
  FTD_TRY(append_encoded_frame(frame, out));
  return out;
}

Status FrameDecoder::feed(std::span<const uint8_t> bytes, std::vector<FrameBytes>& frames) {
  if (corrupt_) return make_error(ErrorCode::kCorrupt, "frame stream already corrupt");
  while (!bytes.empty()) {
    if (!in_body_) {
      size_t take = std::min(kFrameLengthBytes - header_fill_, bytes.size());
      std::copy_n(bytes.begin(), take, header_ + header_fill_);
      header_fill_ += take;
      bytes = bytes.subspan(take);
      if (header_fill_ < kFrameLengthBytes) break;
      body_len_ = (size_t{header_[0]} << 24) | (size_t{header_[1]} << 16) |
                  (size_t{header_[2]} << 8) | size_t{header_[3]};
      if (body_len_ == 0 || body_len_ > kMaxFrameBytes) {
        corrupt_ = true;
        return make_error(ErrorCode::kCorrupt, "frame stream corrupt: frame length {} (max {})",
                          body_len_, kMaxFrameBytes);
      }
      header_fill_ = 0;
      in_body_ = true;
      body_.clear();
      body_.reserve(body_len_);
    }
    size_t take = std::min(body_len_ - body_.size(), bytes.size());
    body_.insert(body_.end(), bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(take));
    bytes = bytes.subspan(take);
    if (body_.size() == body_len_) {
      frames.push_back(std::move(body_));
      body_ = {};
      in_body_ = false;
    }
  }
  return ok();
}

void FrameDecoder::reset() {
  header_fill_ = 0;
  in_body_ = false;
  body_len_ = 0;
  body_.clear();
  corrupt_ = false;
}

}  // namespace ftd::net
