#include "checkpoint/chunking.h"

#include <algorithm>

namespace ftd {

std::vector<ChunkView> split_checkpoint(uint64_t epoch, std::span<const std::byte> encoded,
                                        size_t max_chunk_bytes) {
  const size_t step = std::max<size_t>(1, max_chunk_bytes);
  std::vector<ChunkView> chunks;
  chunks.reserve(encoded.size() / step + 1);
  size_t offset = 0;
  do {
    const size_t n = std::min(step, encoded.size() - offset);
    chunks.push_back({.epoch = epoch,
                      .offset = offset,
                      .total_size = encoded.size(),
                      .data = encoded.subspan(offset, n),
                      .last = offset + n == encoded.size()});
    offset += n;
  } while (offset < encoded.size());
  return chunks;
}

void ChunkAssembler::reset() {
  buffer_.clear();
  in_progress_ = false;
  complete_ = false;
  epoch_ = 0;
  total_ = 0;
}

Result<std::optional<std::span<const std::byte>>> ChunkAssembler::add(const ChunkView& c) {
  if (complete_) reset();
  if (!in_progress_) {
    if (c.total_size > max_bytes_) {
      reset();
      return make_error(ErrorCode::kResourceExhausted, "checkpoint {} claims {} bytes, limit {}",
                        c.epoch, c.total_size, max_bytes_);
    }
    in_progress_ = true;
    epoch_ = c.epoch;
    total_ = c.total_size;
    buffer_.reserve(total_);
  }
  if (c.epoch != epoch_ || c.total_size != total_ || c.offset != buffer_.size() ||
      c.data.size() > total_ - buffer_.size()) {
    auto err = make_error(
        ErrorCode::kCorrupt,
        "chunk of epoch {} at offset {} (+{}, total {}) does not continue epoch {} at {}/{}",
        c.epoch, c.offset, c.data.size(), c.total_size, epoch_, buffer_.size(), total_);
    reset();
    return err;
  }
  buffer_.insert(buffer_.end(), c.data.begin(), c.data.end());
  const bool full = buffer_.size() == total_;
  if (c.last != full) {
    auto err = c.last ? make_error(ErrorCode::kCorrupt, "checkpoint {} ended at {} of {} bytes",
                                   epoch_, buffer_.size(), total_)
                      : make_error(ErrorCode::kCorrupt,
                                   "checkpoint {} is complete ({} bytes) but not marked last",
                                   epoch_, total_);
    reset();
    return err;
  }
  if (!full) return std::nullopt;
  in_progress_ = false;
  complete_ = true;
  return std::span<const std::byte>(buffer_.data(), buffer_.size());
}

}  // namespace ftd
