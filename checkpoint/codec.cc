#include "checkpoint/codec.h"

#include <lz4.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/byte_buffer.h"
#include "common/hash.h"

namespace ftd {
namespace {

// Little-endian field writer/reader over a byte buffer. The header is packed
// by hand (not memcpy of a struct) so the format does not depend on padding.
template <typename Buffer>
void put(Buffer& out, const void* p, size_t n) {
  auto b = static_cast<const std::byte*>(p);
  out.insert(out.end(), b, b + n);
}
template <typename T, typename Buffer>
void put_le(Buffer& out, T v) {
  static_assert(std::endian::native == std::endian::little);
  put(out, &v, sizeof v);
}
template <typename T>
T get_le(std::span<const std::byte> in, size_t offset) {
  T v;
  std::memcpy(&v, in.data() + offset, sizeof v);
  return v;
}

void xor_into(std::byte* dst, const std::byte* a, const std::byte* b, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    x ^= y;
    std::memcpy(dst + i, &x, 8);
  }
  for (; i < n; ++i) dst[i] = a[i] ^ b[i];
}

// Appends compressed `raw` to `out`; returns the stored size, or nullopt when
// compression would not make it smaller.
std::optional<size_t> compress_into(Compression c, std::span<const std::byte> raw,
                                    ByteBuffer& out) {
  size_t start = out.size();
  if (c == Compression::kLz4) {
    if (raw.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) return std::nullopt;
    int bound = LZ4_compressBound(static_cast<int>(raw.size()));
    out.resize(start + static_cast<size_t>(bound));
    int n = LZ4_compress_default(reinterpret_cast<const char*>(raw.data()),
                                 reinterpret_cast<char*>(out.data() + start),
                                 static_cast<int>(raw.size()), bound);
    if (n <= 0 || static_cast<size_t>(n) >= raw.size()) {
      out.resize(start);
      return std::nullopt;
    }
    out.resize(start + static_cast<size_t>(n));
    return static_cast<size_t>(n);
  }
  if (c == Compression::kZstd) {
    size_t bound = ZSTD_compressBound(raw.size());
    out.resize(start + bound);
    size_t n = ZSTD_compress(out.data() + start, bound, raw.data(), raw.size(), 1);
    if (ZSTD_isError(n) || n >= raw.size()) {
      out.resize(start);
      return std::nullopt;
    }
    out.resize(start + n);
    return n;
  }
  return std::nullopt;
}

// lz4's best case is ~255 output bytes per input byte.
uint64_t lz4_max_output(size_t stored) { return uint64_t{stored} * 255 + 16; }

constexpr size_t kSegmentEntrySize = 8;  // raw_size u32, stored_size u32

// One kLz4Segments segment: where its raw bytes go, where its lz4 block is.
struct Segment {
  uint64_t raw_at = 0, raw_size = 0;
  uint64_t stored_at = 0, stored_size = 0;  // within the stored payload
};

// Parses and bounds-checks the segment table of a kLz4Segments payload
// against `raw_size` (the header's) before anything is allocated.
Result<std::vector<Segment>> segment_table(std::span<const std::byte> stored, uint64_t raw_size) {
  if (stored.size() < 4) return make_error(ErrorCode::kCorrupt, "segmented payload truncated");
  const uint32_t count = get_le<uint32_t>(stored, 0);
  if (count == 0 || count > kMaxPayloadSegments)
    return make_error(ErrorCode::kCorrupt, "{} payload segments (1 to {} allowed)", count,
                      kMaxPayloadSegments);
  const uint64_t table = 4 + uint64_t{count} * kSegmentEntrySize;
  if (stored.size() < table)
    return make_error(ErrorCode::kCorrupt, "segment table of {} entries in {} bytes", count,
                      stored.size());
  std::vector<Segment> segments(count);
  uint64_t raw_at = 0, stored_at = table;
  for (uint32_t i = 0; i < count; ++i) {
    Segment& g = segments[i];
    g.raw_size = get_le<uint32_t>(stored, 4 + i * kSegmentEntrySize);
    g.stored_size = get_le<uint32_t>(stored, 8 + i * kSegmentEntrySize);
    if (g.raw_size == 0 || g.stored_size == 0 ||
        g.raw_size > static_cast<uint64_t>(LZ4_MAX_INPUT_SIZE) ||
        g.stored_size > static_cast<uint64_t>(INT32_MAX) ||
        g.raw_size > lz4_max_output(g.stored_size))
      return make_error(ErrorCode::kCorrupt, "segment {}: {} stored bytes cannot hold {}", i,
                        g.stored_size, g.raw_size);
    g.raw_at = raw_at;
    g.stored_at = stored_at;
    raw_at += g.raw_size;  // <= 64 x 2^32: no overflow
    stored_at += g.stored_size;
  }
  if (raw_at != raw_size || stored_at != stored.size())
    return make_error(ErrorCode::kCorrupt,
                      "segments hold {} raw bytes in {} stored, header says {} in {}", raw_at,
                      stored_at, raw_size, stored.size());
  return segments;
}

// Runs task(i) for i in 0..n-1: on the workers (one range of i each) or here.
void for_each_index(size_t n, RangeWorkers* workers, const std::function<void(size_t)>& task) {
  if (!workers || workers->ways() == 1 || n < 2) {
    for (size_t i = 0; i < n; ++i) task(i);
    return;
  }
  const unsigned ways = workers->ways();
  workers->run([&](unsigned w) {
    for (size_t i = n * w / ways; i < n * (w + 1) / ways; ++i) task(i);
  });
}

Status decompress_segments(std::span<const std::byte> stored, uint64_t raw_size, ByteBuffer& raw,
                           RangeWorkers* workers) {
  FTD_ASSIGN_OR_RETURN(std::vector<Segment> segments, segment_table(stored, raw_size));
  raw.resize(raw_size);
  std::vector<char> bad(segments.size(), 0);
  for_each_index(segments.size(), workers, [&](size_t i) {
    const Segment& g = segments[i];
    const int n =
        LZ4_decompress_safe(reinterpret_cast<const char*>(stored.data() + g.stored_at),
                            reinterpret_cast<char*>(raw.data() + g.raw_at),
                            static_cast<int>(g.stored_size), static_cast<int>(g.raw_size));
    bad[i] = n < 0 || static_cast<uint64_t>(n) != g.raw_size;
  });
  for (size_t i = 0; i < segments.size(); ++i)
    if (bad[i])
      return make_error(ErrorCode::kCorrupt, "lz4 segment {} does not decompress to {} bytes", i,
                        segments[i].raw_size);
  return ok();
}

// zstd expands far more than lz4 (a run of zeros: ~30000x), and the content
// size its frame names is as forgeable as our header. So the buffer starts at
// what lz4 could reach and grows (x4, decompressing again) only while the
// payload really produces more: memory follows the data, not the claim.
Status decompress_zstd(std::span<const std::byte> stored, uint64_t raw_size, ByteBuffer& raw) {
  uint64_t capacity = std::min(raw_size, lz4_max_output(stored.size()));
  while (true) {
    raw.clear();  // a retry starts over: nothing to copy into the larger buffer
    raw.resize(capacity);
    const size_t n = ZSTD_decompress(raw.data(), raw.size(), stored.data(), stored.size());
    if (!ZSTD_isError(n) && n == raw_size) return ok();
    if (ZSTD_getErrorCode(n) != ZSTD_error_dstSize_tooSmall || capacity == raw_size)
      return make_error(ErrorCode::kCorrupt, "zstd payload does not decompress to {} bytes: {}",
                        raw_size, ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch");
    capacity = std::min(raw_size, capacity * 4);
  }
}

// Sizes `raw` and fills it; `raw_size` has passed check_expansion().
Status decompress(Compression c, std::span<const std::byte> stored, uint64_t raw_size,
                  ByteBuffer& raw, RangeWorkers* workers) {
  if (c == Compression::kLz4Segments) return decompress_segments(stored, raw_size, raw, workers);
  if (c == Compression::kNone) {
    raw.resize(raw_size);
    if (!raw.empty()) std::memcpy(raw.data(), stored.data(), raw.size());  // null when empty: UB
    return ok();
  }
  if (c == Compression::kLz4) {
    if (raw_size > static_cast<size_t>(LZ4_MAX_INPUT_SIZE) ||
        stored.size() > static_cast<size_t>(INT32_MAX))
      return make_error(ErrorCode::kCorrupt, "lz4 payload too large");
    raw.resize(raw_size);
    int n = LZ4_decompress_safe(reinterpret_cast<const char*>(stored.data()),
                                reinterpret_cast<char*>(raw.data()),
                                static_cast<int>(stored.size()), static_cast<int>(raw.size()));
    if (n < 0 || static_cast<size_t>(n) != raw.size())
      return make_error(ErrorCode::kCorrupt, "lz4 payload does not decompress to {} bytes",
                        raw.size());
    return ok();
  }
  return decompress_zstd(stored, raw_size, raw);
}

// Refuses a payload that cannot decompress to `raw_size` bytes BEFORE the
// decoder allocates them: a forged header may claim gigabytes.
Status check_expansion(Compression c, std::span<const std::byte> stored, uint64_t raw_size) {
  if (c == Compression::kNone) {
    if (stored.size() != raw_size)
      return make_error(ErrorCode::kCorrupt, "uncompressed payload is {} bytes, header says {}",
                        stored.size(), raw_size);
  } else if (c == Compression::kLz4) {
    if (raw_size > lz4_max_output(stored.size()))
      return make_error(ErrorCode::kCorrupt, "lz4 payload of {} bytes cannot expand to {}",
                        stored.size(), raw_size);
  } else if (c == Compression::kLz4Segments) {
    FTD_TRY(segment_table(stored, raw_size));
  } else if (c == Compression::kZstd) {
    // Our encoder always records the content size in the frame header. A
    // cheap early reject only: the frame's claim is not trusted either.
    unsigned long long n = ZSTD_getFrameContentSize(stored.data(), stored.size());
    if (n != raw_size)
      return make_error(ErrorCode::kCorrupt, "zstd frame holds {} bytes, header says {}",
                        n == ZSTD_CONTENTSIZE_UNKNOWN || n == ZSTD_CONTENTSIZE_ERROR
                            ? std::string("an unknown number of")
                            : std::to_string(n),
                        raw_size);
  }
  return ok();
}

// The bounds every disk section obeys, checked by the encoder (a bug on the
// primary) and the decoder (a forged or corrupt checkpoint) alike. Records
// carry no data yet when the decoder calls this: `data_bytes` is what the
// payload must then hold.
Result<uint64_t> check_disk_writes(const DiskEpoch& disk, bool sync_chunk) {
  if (disk.writes.size() > kMaxDiskRecords)
    return make_error(ErrorCode::kCorrupt, "{} disk writes in one checkpoint (at most {})",
                      disk.writes.size(), kMaxDiskRecords);
  if (sync_chunk && !disk.writes.empty())
    return make_error(ErrorCode::kCorrupt, "sync chunk carries {} disk writes", disk.writes.size());
  uint64_t data_bytes = 0;
  for (size_t i = 0; i < disk.writes.size(); ++i) {
    const DiskWrite& w = disk.writes[i];
    if (w.kind != DiskWrite::Kind::kData && w.kind != DiskWrite::Kind::kZeroes)
      return make_error(ErrorCode::kCorrupt, "disk write {} has unknown kind {}", w.seq,
                        static_cast<unsigned>(w.kind));
    if (w.length == 0 || w.length > kMaxDiskWriteLength)
      return make_error(ErrorCode::kCorrupt, "disk write {} of {} bytes (1 to {} allowed)", w.seq,
                        w.length, kMaxDiskWriteLength);
    // offset + length could wrap: compare against what is left of the disk.
    if (w.offset > disk.disk_size || w.length > disk.disk_size - w.offset)
      return make_error(ErrorCode::kCorrupt, "disk write {} at {}+{} beyond the {}-byte disk",
                        w.seq, w.offset, w.length, disk.disk_size);
    if (w.seq == 0 || (i > 0 && w.seq != disk.writes[i - 1].seq + 1))
      return make_error(ErrorCode::kCorrupt,
                        "disk write seq {} at record {} does not follow {} (contiguous from 1)",
                        w.seq, i, i > 0 ? disk.writes[i - 1].seq : 0);
    if (w.kind == DiskWrite::Kind::kData) data_bytes += w.length;
    if (data_bytes > kMaxDiskBytesPerCheckpoint)
      return make_error(ErrorCode::kCorrupt, "more than {} bytes of disk data in one checkpoint",
                        kMaxDiskBytesPerCheckpoint);
  }
  return data_bytes;
}

void put_disk_section(ByteBuffer& out, const DiskEpoch& disk) {
  put_le<uint64_t>(out, disk.disk_size);
  for (const DiskWrite& w : disk.writes) {
    put_le<uint64_t>(out, w.seq);
    put_le<uint64_t>(out, w.offset);
    put_le<uint32_t>(out, w.length);
    put_le<uint8_t>(out, static_cast<uint8_t>(w.kind));
    out.resize(out.size() + 3, std::byte{0});  // zero padding (ByteBuffer does not zero)
  }
}

// Reads the records (no data); `section` is exactly 8 + count x 24 bytes.
Result<DiskEpoch> get_disk_section(std::span<const std::byte> section, const CheckpointHeader& h) {
  DiskEpoch disk;
  disk.disk_size = get_le<uint64_t>(section, 0);
  disk.complete = h.disk_flags & kDiskComplete;
  disk.writes.resize(h.disk_record_count);
  for (size_t i = 0; i < disk.writes.size(); ++i) {
    const size_t at = 8 + i * kDiskRecordSize;
    DiskWrite& w = disk.writes[i];
    w.seq = get_le<uint64_t>(section, at);
    w.offset = get_le<uint64_t>(section, at + 8);
    w.length = get_le<uint32_t>(section, at + 16);
    w.kind = static_cast<DiskWrite::Kind>(get_le<uint8_t>(section, at + 20));
    for (size_t pad = 21; pad < kDiskRecordSize; ++pad)
      if (section[at + pad] != std::byte{0})
        return make_error(ErrorCode::kCorrupt, "disk record {} has non-zero padding", i);
  }
  return disk;
}

// Writes pages [first, end) of the raw payload: XOR deltas against their
// base when there is one, else the contents as they are.
void fill_pages(const CheckpointInput& in, size_t first, size_t end, ByteBuffer& raw) {
  const size_t ps = in.page_size;
  if (!in.base_pages.empty()) {
    xor_into(raw.data() + first * ps, in.pages.data() + first * ps,
             in.base_pages.data() + first * ps, (end - first) * ps);
  } else if (!in.base_memory.empty()) {
    for (size_t i = first; i < end; ++i)
      xor_into(raw.data() + i * ps, in.pages.data() + i * ps,
               in.base_memory.data() + uint64_t{in.page_indices[i]} * ps, ps);
  } else if (end > first) {
    std::memcpy(raw.data() + first * ps, in.pages.data() + first * ps, (end - first) * ps);
  }
}

// kLz4Segments: segment w holds pages [n*w/ways, n*(w+1)/ways) (the last one
// also the device state and disk data); each worker delta-encodes and
// compresses its own, then the table and the blocks are appended to `out` in
// order. The raw tail (device state, disk data) is already in scratch.raw.
// nullopt when that is not smaller than the raw payload (`out` unchanged).
std::optional<size_t> encode_segments(const CheckpointInput& in, unsigned ways,
                                      RangeWorkers& workers, EncodeScratch& scratch,
                                      ByteBuffer& out) {
  ByteBuffer& raw = scratch.raw;
  const size_t n = in.page_indices.size();
  const size_t ps = in.page_size;
  scratch.segments.resize(ways);
  std::vector<int> sizes(ways, 0);
  workers.run([&](unsigned w) {
    const size_t first = n * w / ways, end = n * (w + 1) / ways;
    fill_pages(in, first, end, raw);
    const size_t raw_end = w + 1 == ways ? raw.size() : end * ps;
    const int len = static_cast<int>(raw_end - first * ps);  // <= raw size < LZ4_MAX_INPUT_SIZE
    ByteBuffer& seg = scratch.segments[w];
    seg.resize(static_cast<size_t>(LZ4_compressBound(len)));
    sizes[w] = LZ4_compress_default(reinterpret_cast<const char*>(raw.data() + first * ps),
                                    reinterpret_cast<char*>(seg.data()), len,
                                    static_cast<int>(seg.size()));
  });
  size_t total = 4 + ways * kSegmentEntrySize;
  for (int z : sizes) {
    if (z <= 0) return std::nullopt;
    total += static_cast<size_t>(z);
  }
  if (total >= raw.size()) return std::nullopt;
  put_le<uint32_t>(out, ways);
  for (unsigned w = 0; w < ways; ++w) {
    const size_t first = n * w / ways, end = n * (w + 1) / ways;
    const size_t raw_end = w + 1 == ways ? raw.size() : end * ps;
    put_le<uint32_t>(out, static_cast<uint32_t>(raw_end - first * ps));
    put_le<uint32_t>(out, static_cast<uint32_t>(sizes[w]));
  }
  for (unsigned w = 0; w < ways; ++w)
    put(out, scratch.segments[w].data(), static_cast<size_t>(sizes[w]));
  return total;
}

}  // namespace

std::string_view to_string(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kLz4:
      return "lz4";
    case Compression::kZstd:
      return "zstd";
    case Compression::kLz4Segments:
      return "lz4-segments";
  }
  return "?";
}

Result<EncodeStats> encode_checkpoint(const CheckpointInput& in, CompressionPolicy policy,
                                      ByteBuffer& out, EncodeScratch& scratch,
                                      RangeWorkers* workers, size_t min_segmented_bytes) {
  const size_t n_pages = in.page_indices.size();
  if (in.page_size == 0 || in.page_size % 8 != 0)
    return make_error(ErrorCode::kInvalidArgument, "page size {} invalid", in.page_size);
  if (in.pages.size() != n_pages * in.page_size)
    return make_error(ErrorCode::kInvalidArgument, "{} page bytes for {} pages", in.pages.size(),
                      n_pages);
  if (!in.base_pages.empty() && in.base_pages.size() != in.pages.size())
    return make_error(ErrorCode::kInvalidArgument, "base pages do not match pages");
  if (!in.base_pages.empty() && !in.base_memory.empty())
    return make_error(ErrorCode::kInvalidArgument, "both base pages and a base image");
  for (size_t i = 1; i < n_pages; ++i)
    if (in.page_indices[i] <= in.page_indices[i - 1])
      return make_error(ErrorCode::kInvalidArgument, "page indices not strictly increasing");
  // Sorted: the last index is the largest.
  if (!in.base_memory.empty() && n_pages > 0 &&
      (uint64_t{in.page_indices.back()} + 1) * in.page_size > in.base_memory.size())
    return make_error(ErrorCode::kInvalidArgument, "page {} beyond the {}-byte base image",
                      in.page_indices.back(), in.base_memory.size());

  const bool has_disk = in.disk && in.disk->disk_size > 0;
  uint64_t disk_bytes = 0;
  if (has_disk) {
    auto checked = check_disk_writes(*in.disk, in.flags & kFlagSyncChunk);
    if (!checked) return make_error(ErrorCode::kInvalidArgument, "{}", checked.error().message);
    disk_bytes = *checked;
    for (const DiskWrite& w : in.disk->writes)
      if (w.data.size() != (w.kind == DiskWrite::Kind::kData ? w.length : 0))
        return make_error(ErrorCode::kInvalidArgument, "disk write {} carries {} bytes for {}",
                          w.seq, w.data.size(), w.length);
  } else if (in.disk && !in.disk->writes.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "disk writes without a disk size");
  }

  // Raw payload: pages (XOR'ed against their base when we have one) + device
  // state + disk data.
  const bool xor_delta = !in.base_pages.empty() || !in.base_memory.empty();
  ByteBuffer& raw = scratch.raw;
  raw.resize(in.pages.size() + in.device_state.size() + disk_bytes);
  if (!in.device_state.empty())
    std::memcpy(raw.data() + in.pages.size(), in.device_state.data(), in.device_state.size());
  if (has_disk) {
    std::byte* at = raw.data() + in.pages.size() + in.device_state.size();
    for (const DiskWrite& w : in.disk->writes) {
      if (w.kind != DiskWrite::Kind::kData) continue;
      std::memcpy(at, w.data.data(), w.length);
      at += w.length;
    }
  }

  out.clear();
  out.reserve(kCheckpointHeaderSize + n_pages * 4 + raw.size() / 2 + 8);
  out.resize(kCheckpointHeaderSize);  // patched below once sizes are known
  put(out, in.page_indices.data(), n_pages * sizeof(uint32_t));
  if (has_disk) put_disk_section(out, *in.disk);
  const size_t payload_at = out.size();

  // Per-checkpoint choice: lz4 is cheap; zstd only when lz4 leaves a lot on the table.
  // The first compressor writes straight into `out`; a second one into scratch.
  Compression chosen = Compression::kNone;
  std::optional<size_t> stored;
  auto try_codec = [&](Compression c) {
    if (!stored) {
      stored = compress_into(c, raw, out);
      if (stored) chosen = c;
      return;
    }
    scratch.candidate.clear();
    auto n = compress_into(c, raw, scratch.candidate);
    if (n && *n < *stored) {
      out.resize(payload_at);
      put(out, scratch.candidate.data(), scratch.candidate.size());
      stored = n;
      chosen = c;
    }
  };
  const unsigned ways = workers ? workers->ways() : 1;
  // Every segment holds at least one page.
  const bool segmented = ways > 1 && n_pages >= ways && raw.size() >= min_segmented_bytes &&
                         raw.size() <= static_cast<size_t>(LZ4_MAX_INPUT_SIZE) &&
                         (policy == CompressionPolicy::kAuto || policy == CompressionPolicy::kLz4);
  if (segmented) {
    stored = encode_segments(in, ways, *workers, scratch, out);
    if (stored) chosen = Compression::kLz4Segments;
  } else {
    fill_pages(in, 0, n_pages, raw);
  }
  switch (policy) {
    case CompressionPolicy::kNone:
      break;
    case CompressionPolicy::kLz4:
      if (!segmented) try_codec(Compression::kLz4);
      break;
    case CompressionPolicy::kZstd:
      try_codec(Compression::kZstd);
      break;
    case CompressionPolicy::kAuto:
      if (!segmented) try_codec(Compression::kLz4);
      if (!stored || *stored * 3 > raw.size()) try_codec(Compression::kZstd);
      break;
  }
  if (!stored) {
    put(out, raw.data(), raw.size());
    stored = raw.size();
  }

  ByteBuffer header;
  header.reserve(kCheckpointHeaderSize);
  put_le<uint32_t>(header, kCheckpointMagic);
  put_le<uint16_t>(header, kCheckpointVersion);
  put_le<uint8_t>(header, static_cast<uint8_t>(chosen));
  put_le<uint8_t>(header, static_cast<uint8_t>(in.flags | (xor_delta ? kFlagXorDelta : 0)));
  put_le<uint64_t>(header, in.epoch);
  put_le<uint64_t>(header, in.base_epoch);
  put_le<uint32_t>(header, in.page_size);
  put_le<uint32_t>(header, static_cast<uint32_t>(n_pages));
  put_le<uint64_t>(header, raw.size());
  put_le<uint64_t>(header, *stored);
  put_le<uint64_t>(header, in.device_state.size());
  put_le<uint32_t>(header, has_disk ? static_cast<uint32_t>(in.disk->writes.size()) : 0);
  put_le<uint8_t>(
      header,
      has_disk ? static_cast<uint8_t>(kDiskPresent | (in.disk->complete ? kDiskComplete : 0)) : 0);
  header.resize(kCheckpointHeaderSize, std::byte{0});  // reserved bytes stay zero
  std::memcpy(out.data(), header.data(), kCheckpointHeaderSize);

  put_le<uint64_t>(out, hash64(out));
  return EncodeStats{chosen, raw.size(), out.size()};
}

Result<EncodeStats> encode_checkpoint(const CheckpointInput& in, CompressionPolicy policy,
                                      std::vector<std::byte>& out) {
  ByteBuffer encoded;
  EncodeScratch scratch;
  FTD_ASSIGN_OR_RETURN(EncodeStats stats, encode_checkpoint(in, policy, encoded, scratch));
  out.assign(encoded.begin(), encoded.end());
  return stats;
}

Result<CheckpointHeader> peek_header(std::span<const std::byte> in) {
  if (in.size() < kCheckpointHeaderSize + 8)
    return make_error(ErrorCode::kCorrupt, "checkpoint truncated: {} bytes, header needs {}",
                      in.size(), kCheckpointHeaderSize + 8);
  CheckpointHeader h;
  h.magic = get_le<uint32_t>(in, 0);
  h.version = get_le<uint16_t>(in, 4);
  h.compression = static_cast<Compression>(get_le<uint8_t>(in, 6));
  h.flags = get_le<uint8_t>(in, 7);
  h.epoch = get_le<uint64_t>(in, 8);
  h.base_epoch = get_le<uint64_t>(in, 16);
  h.page_size = get_le<uint32_t>(in, 24);
  h.page_count = get_le<uint32_t>(in, 28);
  h.payload_raw_size = get_le<uint64_t>(in, 32);
  h.payload_stored_size = get_le<uint64_t>(in, 40);
  h.device_state_size = get_le<uint64_t>(in, 48);
  h.disk_record_count = get_le<uint32_t>(in, 56);
  h.disk_flags = get_le<uint8_t>(in, 60);
  if (h.magic != kCheckpointMagic)
    return make_error(ErrorCode::kCorrupt, "bad checkpoint magic {:#x}", h.magic);
  if (h.version != kCheckpointVersion)
    return make_error(ErrorCode::kCorrupt, "unsupported checkpoint version {}", h.version);
  if (get_le<uint8_t>(in, 6) > static_cast<uint8_t>(Compression::kLz4Segments))
    return make_error(ErrorCode::kCorrupt, "unknown compression {}", get_le<uint8_t>(in, 6));
  if (h.disk_flags & ~(kDiskPresent | kDiskComplete) ||
      ((h.disk_flags & kDiskPresent) == 0 && (h.disk_flags != 0 || h.disk_record_count != 0)))
    return make_error(ErrorCode::kCorrupt, "disk flags {:#x} with {} records invalid", h.disk_flags,
                      h.disk_record_count);
  if (h.disk_record_count > kMaxDiskRecords)
    return make_error(ErrorCode::kCorrupt, "{} disk records (at most {})", h.disk_record_count,
                      kMaxDiskRecords);
  for (size_t pad = 61; pad < kCheckpointHeaderSize; ++pad)
    if (in[pad] != std::byte{0})
      return make_error(ErrorCode::kCorrupt, "reserved header byte {} is not zero", pad);
  return h;
}

Result<DecodedCheckpoint> decode_checkpoint(std::span<const std::byte> in,
                                            std::span<const std::byte> memory) {
  DecodedCheckpoint d;
  FTD_TRY(decode_checkpoint_into(in, memory, d));
  return d;
}

Status decode_checkpoint_into(std::span<const std::byte> in, std::span<const std::byte> memory,
                              DecodedCheckpoint& d, RangeWorkers* workers) {
  FTD_ASSIGN_OR_RETURN(CheckpointHeader h, peek_header(in));
  const auto body = in.first(in.size() - 8);
  const uint64_t want = get_le<uint64_t>(in, in.size() - 8);
  if (uint64_t got = hash64(body); got != want)
    return make_error(ErrorCode::kCorrupt, "checkpoint {} checksum mismatch ({:#x} != {:#x})",
                      h.epoch, got, want);
  // Sizes are 64-bit and attacker-controlled: check in an order that cannot overflow.
  if (h.page_size == 0 || h.page_size % 8 != 0 || h.page_size > (1u << 21))
    return make_error(ErrorCode::kCorrupt, "page size {} invalid", h.page_size);
  const uint64_t pages_in_memory = memory.size() / h.page_size;
  if (h.page_count > pages_in_memory)
    return make_error(ErrorCode::kCorrupt, "{} pages but memory holds {}", h.page_count,
                      pages_in_memory);
  const uint64_t page_bytes = uint64_t{h.page_count} * h.page_size;
  const uint64_t index_bytes = uint64_t{h.page_count} * 4;
  const uint64_t disk_section_bytes =
      h.disk_flags & kDiskPresent ? 8 + uint64_t{h.disk_record_count} * kDiskRecordSize : 0;
  // Subtract from the known size rather than add header fields: a forged
  // stored size could otherwise wrap the sum around to the real length.
  const uint64_t after_header = body.size() - kCheckpointHeaderSize;
  if (index_bytes + disk_section_bytes > after_header ||
      h.payload_stored_size != after_header - index_bytes - disk_section_bytes)
    return make_error(ErrorCode::kCorrupt,
                      "checkpoint is {} bytes, header describes {} index bytes, {} disk record "
                      "bytes and {} payload bytes",
                      in.size(), index_bytes, disk_section_bytes, h.payload_stored_size);
  DiskEpoch disk;
  uint64_t disk_bytes = 0;
  if (h.disk_flags & kDiskPresent) {
    FTD_ASSIGN_OR_RETURN(
        disk,
        get_disk_section(body.subspan(kCheckpointHeaderSize + index_bytes, disk_section_bytes), h));
    FTD_ASSIGN_OR_RETURN(disk_bytes, check_disk_writes(disk, h.flags & kFlagSyncChunk));
    if (disk.disk_size == 0)
      return make_error(ErrorCode::kCorrupt, "disk section with a disk of 0 bytes");
  }
  if (h.device_state_size > (uint64_t{1} << 32) ||
      h.payload_raw_size != page_bytes + h.device_state_size + disk_bytes)
    return make_error(ErrorCode::kCorrupt,
                      "payload size {} != {} pages + {} device bytes + {} disk bytes",
                      h.payload_raw_size, h.page_count, h.device_state_size, disk_bytes);
  const uint64_t payload_at = kCheckpointHeaderSize + index_bytes + disk_section_bytes;
  FTD_TRY(check_expansion(h.compression, body.subspan(payload_at, h.payload_stored_size),
                          h.payload_raw_size));

  d.header = h;
  d.page_indices.resize(h.page_count);
  // No pages: data() may be null, and memcpy from/to null is UB even for 0 bytes (UBSan).
  if (index_bytes > 0)
    std::memcpy(d.page_indices.data(), body.data() + kCheckpointHeaderSize, index_bytes);
  for (size_t i = 0; i < d.page_indices.size(); ++i) {
    if (d.page_indices[i] >= pages_in_memory)
      return make_error(ErrorCode::kCorrupt, "page index {} beyond memory ({} pages)",
                        d.page_indices[i], pages_in_memory);
    if (i > 0 && d.page_indices[i] <= d.page_indices[i - 1])
      return make_error(ErrorCode::kCorrupt, "page indices not strictly increasing at {}", i);
  }

  ByteBuffer& raw = d.pages;  // decompressed in place, then cut down to the pages
  FTD_TRY(decompress(h.compression, body.subspan(payload_at, h.payload_stored_size),
                     h.payload_raw_size, raw, workers));
  const std::byte* disk_data = raw.data() + page_bytes + h.device_state_size;
  for (DiskWrite& w : disk.writes) {
    if (w.kind != DiskWrite::Kind::kData) continue;
    w.data.resize(w.length);
    std::memcpy(w.data.data(), disk_data, w.length);
    disk_data += w.length;
  }
  d.disk = std::move(disk);
  d.device_state.assign(raw.begin() + static_cast<ptrdiff_t>(page_bytes),
                        raw.begin() + static_cast<ptrdiff_t>(page_bytes + h.device_state_size));
  raw.resize(page_bytes);
  if (h.flags & kFlagXorDelta) {
    // In page ranges, one per worker: each page is resolved by exactly one.
    const size_t n = d.page_indices.size();
    const size_t ways = workers && page_bytes >= kMinSegmentedBytes ? workers->ways() : 1;
    for_each_index(ways, ways > 1 ? workers : nullptr, [&](size_t w) {
      for (size_t i = n * w / ways; i < n * (w + 1) / ways; ++i) {
        std::byte* p = raw.data() + i * h.page_size;
        xor_into(p, p, memory.data() + uint64_t{d.page_indices[i]} * h.page_size, h.page_size);
      }
    });
  }
  return ok();
}

}  // namespace ftd
