// Transport framing of encoded checkpoints. The replication stream carries a
// checkpoint as chunks (epoch, offset, total size, bytes, last); the primary
// cuts them with split_checkpoint(), the secondary reassembles them with a
// ChunkAssembler that checks every bound before it stores a byte. The codec
// (codec.h) checks what is inside; this layer only guarantees that a
// checkpoint handed on is exactly the bytes the primary cut, contiguous,
// of one epoch, and no larger than the limit.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/byte_buffer.h"
#include "common/result.h"

namespace ftd {

struct ChunkView {
  uint64_t epoch = 0;
  uint64_t offset = 0;      // of `data` within the encoded checkpoint
  uint64_t total_size = 0;  // of the whole encoded checkpoint
  std::span<const std::byte> data;
  bool last = false;
};

// Views into `encoded` (which must outlive them), each at most
// `max_chunk_bytes` (> 0) long; the last one has `last` set. An empty
// checkpoint is one empty last chunk.
std::vector<ChunkView> split_checkpoint(uint64_t epoch, std::span<const std::byte> encoded,
                                        size_t max_chunk_bytes);

// Reassembles one checkpoint at a time. Not thread-safe: one stream's reader.
class ChunkAssembler {
 public:
  // Checkpoints claiming more than `max_checkpoint_bytes` are refused before
  // anything is allocated for them.
  explicit ChunkAssembler(uint64_t max_checkpoint_bytes) : max_bytes_(max_checkpoint_bytes) {}

  // Adds the next chunk. Returns the whole checkpoint once `last` completes
  // it (valid until the next add()), nullopt while it is incomplete, or an
  // error (kCorrupt: gap, overlap, other epoch, size change, early or missing
  // `last`; kResourceExhausted: over the limit). After a completed checkpoint
  // or an error the assembler starts afresh.
  Result<std::optional<std::span<const std::byte>>> add(const ChunkView& chunk);

  // A checkpoint is partly received (what a broken stream leaves behind).
  bool partial() const { return in_progress_; }
  uint64_t epoch() const { return epoch_; }
  uint64_t received_bytes() const { return buffer_.size(); }
  uint64_t total_bytes() const { return total_; }
  void reset();

 private:
  const uint64_t max_bytes_;
  ByteBuffer buffer_;  // reused across checkpoints: no page faults per epoch
  bool in_progress_ = false;
  bool complete_ = false;  // buffer_ holds the last returned checkpoint
  uint64_t epoch_ = 0;
  uint64_t total_ = 0;
};

}  // namespace ftd
