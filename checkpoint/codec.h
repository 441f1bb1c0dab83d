// The checkpoint byte format. One encoded checkpoint is self-describing and
// self-verifying; the transport just moves its bytes (in chunks).
//
//   Header (little-endian, 64 bytes)
//     magic "FTCK" u32 | version u16 | compression u8 | flags u8
//     epoch u64 | base_epoch u64 | page_size u32 | page_count u32
//     payload_raw_size u64 | payload_stored_size u64 | device_state_size u64
//     disk_record_count u32 | disk_flags u8 | 3 zero bytes
//   page indices  page_count x u32, strictly increasing
//   disk section  (only when disk_flags has kDiskPresent) disk_size u64, then
//                 disk_record_count x {seq u64, offset u64, length u32,
//                 kind u8 (0 data, 1 zeroes), 3 zero bytes}
//   payload       compressed([pages][device state][disk data]); pages are XOR
//                 deltas against the base epoch's content when kFlagXorDelta
//                 is set; disk data is the kData records' bytes, in order.
//                 kLz4Segments (version 3): segment_count u32, then per
//                 segment {raw_size u32, stored_size u32}, then the segments,
//                 each an independent lz4 block of consecutive raw bytes (so
//                 both ends can (de)compress them on several cores)
//   checksum      u64 xxh3 over everything above
//
// The decoder trusts nothing: every size is bounds-checked against the buffer
// and the guest's memory before a byte is touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/byte_buffer.h"
#include "common/range_workers.h"
#include "common/result.h"
#include "disk/disk_write.h"

namespace ftd {

enum class Compression : uint8_t { kNone = 0, kLz4 = 1, kZstd = 2, kLz4Segments = 3 };
std::string_view to_string(Compression c);

inline constexpr uint32_t kCheckpointMagic = 0x4b435446;  // "FTCK"
inline constexpr uint16_t kCheckpointVersion = 3;         // 2: disk section, 3: lz4 segments
inline constexpr uint8_t kFlagXorDelta = 1;               // pages are XOR deltas vs base epoch
inline constexpr uint8_t kFlagSyncChunk = 2;  // initial-sync part: no device state, not consistent
inline constexpr size_t kCheckpointHeaderSize = 64;
inline constexpr uint8_t kDiskPresent = 1;   // disk_flags: the VM has a replicated disk
inline constexpr uint8_t kDiskComplete = 2;  // disk_flags: the mirror's first copy is done
inline constexpr size_t kDiskRecordSize = 24;
// Bounds a decoder enforces before allocating (QEMU's NBD client writes at
// most 32 MiB per request; an epoch of 40 ms cannot carry more than the cap).
inline constexpr uint32_t kMaxDiskRecords = 1u << 20;
inline constexpr uint32_t kMaxDiskWriteLength = 32u << 20;
inline constexpr uint64_t kMaxDiskBytesPerCheckpoint = 1ull << 30;
// kLz4Segments: at most this many segments, and only payloads of at least
// kMinSegmentedBytes are split (below that a thread wake-up costs more than it saves).
inline constexpr uint32_t kMaxPayloadSegments = 64;
inline constexpr size_t kMinSegmentedBytes = 1 << 20;

struct CheckpointHeader {
  uint32_t magic = kCheckpointMagic;
  uint16_t version = kCheckpointVersion;
  Compression compression = Compression::kNone;
  uint8_t flags = 0;
  uint64_t epoch = 0;
  uint64_t base_epoch = 0;  // replica must be at this epoch to apply (XOR deltas)
  uint32_t page_size = 0;
  uint32_t page_count = 0;
  uint64_t payload_raw_size = 0;
  uint64_t payload_stored_size = 0;
  uint64_t device_state_size = 0;
  uint32_t disk_record_count = 0;
  uint8_t disk_flags = 0;
};

// What the primary captured while the guest was paused.
struct CheckpointInput {
  uint64_t epoch = 0;
  uint64_t base_epoch = 0;
  uint8_t flags = 0;
  uint32_t page_size = 4096;
  std::span<const uint32_t> page_indices;  // strictly increasing
  std::span<const std::byte> pages;        // page_indices.size() * page_size, new contents
  // Previous contents of the same pages (same layout) for XOR deltas; empty = no delta.
  std::span<const std::byte> base_pages;
  // Or: the whole image the deltas are against, indexed by page_indices (the
  // primary's shadow). Saves gathering the base pages into a copy first.
  // At most one of base_pages and base_memory is set.
  std::span<const std::byte> base_memory;
  std::span<const std::byte> device_state;
  // The epoch's disk writes; null or disk_size 0 = no disk section. Seqs
  // strictly increasing and contiguous; sync chunks carry none.
  const DiskEpoch* disk = nullptr;
};

enum class CompressionPolicy { kAuto, kNone, kLz4, kZstd };

struct EncodeStats {
  Compression compression = Compression::kNone;
  uint64_t raw_bytes = 0;      // pages + device state before delta/compression
  uint64_t encoded_bytes = 0;  // whole encoded checkpoint
};

// Buffers an encoder keeps from one checkpoint to the next. Fresh multi-MiB
// buffers cost a page fault per 4 KiB on first touch (the top cost of the
// pipeline in perf at 50k dirty pages/s), and glibc returns them to the
// kernel on free (threads' arenas cannot hold blocks over 64 MiB).
struct EncodeScratch {
  ByteBuffer raw;                    // delta'd pages + device state + disk data
  ByteBuffer candidate;              // a second compressor's output while comparing
  std::vector<ByteBuffer> segments;  // kLz4Segments: one lz4 block per worker
};

// Encodes into `out` (replacing its contents), reusing `scratch` and `out`'s capacity.
// With `workers` of more than one way, kAuto and kLz4 split a large payload
// into that many kLz4Segments segments, delta-encoded and compressed in
// parallel (the output is in page order whatever the scheduling).
// `min_segmented_bytes`: smaller payloads stay one block (tests and fuzz seeds lower it).
Result<EncodeStats> encode_checkpoint(const CheckpointInput& in, CompressionPolicy policy,
                                      ByteBuffer& out, EncodeScratch& scratch,
                                      RangeWorkers* workers = nullptr,
                                      size_t min_segmented_bytes = kMinSegmentedBytes);
// Convenience for tests and tools: fresh buffers.
Result<EncodeStats> encode_checkpoint(const CheckpointInput& in, CompressionPolicy policy,
                                      std::vector<std::byte>& out);

// A verified, decompressed checkpoint. Pages hold ABSOLUTE contents (XOR
// deltas already resolved), so applying it is a plain copy and idempotent.
struct DecodedCheckpoint {
  CheckpointHeader header;
  std::vector<uint32_t> page_indices;
  ByteBuffer pages;
  std::vector<std::byte> device_state;
  DiskEpoch disk;  // disk_size 0 when the checkpoint has no disk section
};

// Parses and verifies only the header fields (no checksum): for early rejects.
Result<CheckpointHeader> peek_header(std::span<const std::byte> encoded);

// Verifies the checksum and every bound, decompresses, and resolves XOR deltas
// against `memory` (the replica's current image). `memory` is only read.
Result<DecodedCheckpoint> decode_checkpoint(std::span<const std::byte> encoded,
                                            std::span<const std::byte> memory);
// The same into `out`, reusing its buffers' capacity (the secondary decodes
// every checkpoint into one). On error `out` holds nothing meaningful.
// `workers`: decompress kLz4Segments segments and resolve XOR deltas in parallel.
Status decode_checkpoint_into(std::span<const std::byte> encoded, std::span<const std::byte> memory,
                              DecodedCheckpoint& out, RangeWorkers* workers = nullptr);

}  // namespace ftd
