// The secondary's checkpoint decoder (checkpoint/codec.h decode_checkpoint)
// on untrusted bytes. The input is an encoded checkpoint (the seeds come from
// the real encoder). It is decoded three times: as is; with its trailing
// checksum rewritten to match (xxh3 is no MAC, a forger computes it too);
// and with the header's two derived sizes made consistent as well, so that a
// mutated page count, device state size or compressed payload gets past the
// size checks to the decompressors, as a careful forger's would.
// Oracle: a decoded checkpoint is self-consistent and survives a round trip
// through the encoder unchanged.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "checkpoint/codec.h"
#include "common/hash.h"
#include "fuzz/checkpoint_memory.h"
#include "fuzz/fuzz_check.h"

namespace ftd::fuzz {
namespace {

void check_decoded(const DecodedCheckpoint& d, std::span<const std::byte> memory) {
  const auto& h = d.header;
  FUZZ_CHECK(h.page_size > 0 && memory.size() / h.page_size >= d.page_indices.size());
  FUZZ_CHECK(d.page_indices.size() == h.page_count);
  FUZZ_CHECK(d.pages.size() == uint64_t{h.page_count} * h.page_size);
  FUZZ_CHECK(d.device_state.size() == h.device_state_size);
  for (size_t i = 0; i < d.page_indices.size(); ++i) {
    FUZZ_CHECK(d.page_indices[i] < memory.size() / h.page_size);
    FUZZ_CHECK(i == 0 || d.page_indices[i] > d.page_indices[i - 1]);
  }
  FUZZ_CHECK(d.disk.writes.size() == h.disk_record_count);
  for (size_t i = 0; i < d.disk.writes.size(); ++i) {
    const DiskWrite& w = d.disk.writes[i];
    FUZZ_CHECK(w.offset <= d.disk.disk_size && w.length <= d.disk.disk_size - w.offset);
    FUZZ_CHECK(w.data.size() == (w.kind == DiskWrite::Kind::kData ? w.length : 0));
    FUZZ_CHECK(i == 0 || w.seq == d.disk.writes[i - 1].seq + 1);
  }

  // Absolute pages re-encoded without a delta decode to the same contents.
  CheckpointInput in{.epoch = h.epoch,
                     .base_epoch = h.base_epoch,
                     .flags = static_cast<uint8_t>(h.flags & ~kFlagXorDelta),
                     .page_size = h.page_size,
                     .page_indices = d.page_indices,
                     .pages = d.pages,
                     .device_state = d.device_state,
                     .disk = &d.disk};
  std::vector<std::byte> again;
  auto st = encode_checkpoint(in, CompressionPolicy::kLz4, again);
  FUZZ_CHECK(st.has_value());
  auto d2 = decode_checkpoint(again, memory);
  FUZZ_CHECK(d2.has_value());
  FUZZ_CHECK(d2->page_indices == d.page_indices);
  FUZZ_CHECK(std::equal(d2->pages.begin(), d2->pages.end(), d.pages.begin(), d.pages.end()));
  FUZZ_CHECK(d2->device_state == d.device_state);
  FUZZ_CHECK(d2->disk.disk_size == d.disk.disk_size && d2->disk.complete == d.disk.complete);
  FUZZ_CHECK(d2->disk.writes.size() == d.disk.writes.size());
  for (size_t i = 0; i < d.disk.writes.size(); ++i) {
    const DiskWrite &a = d.disk.writes[i], &b = d2->disk.writes[i];
    FUZZ_CHECK(a.seq == b.seq && a.offset == b.offset && a.length == b.length && a.kind == b.kind &&
               std::equal(a.data.begin(), a.data.end(), b.data.begin(), b.data.end()));
  }
}

template <typename T>
T load(const std::vector<std::byte>& v, size_t at) {
  T x;
  std::memcpy(&x, v.data() + at, sizeof x);
  return x;
}
template <typename T>
void store(std::vector<std::byte>& v, size_t at, T x) {
  std::memcpy(v.data() + at, &x, sizeof x);
}

// Overwrites the trailing checksum so it matches the bytes before it.
void reseal(std::vector<std::byte>& enc) {
  store(enc, enc.size() - 8, hash64(std::span(enc).first(enc.size() - 8)));
}

// Header offsets from codec.h: payload_raw_size = pages + device state +
// the data records' lengths, payload_stored_size = what follows the page
// indices and the disk section.
void make_sizes_consistent(std::vector<std::byte>& enc) {
  const uint64_t page_size = load<uint32_t>(enc, 24);
  const uint64_t page_count = load<uint32_t>(enc, 28);
  const uint64_t device_state = load<uint64_t>(enc, 48);
  const uint64_t after_header = enc.size() - 8 - kCheckpointHeaderSize;
  const uint64_t records = load<uint8_t>(enc, 60) & kDiskPresent ? load<uint32_t>(enc, 56) : 0;
  const uint64_t disk_section =
      load<uint8_t>(enc, 60) & kDiskPresent ? 8 + records * kDiskRecordSize : 0;
  uint64_t disk_data = 0;
  const uint64_t records_at = kCheckpointHeaderSize + page_count * 4 + 8;
  if (page_count * 4 + disk_section <= after_header) {
    store<uint64_t>(enc, 40, after_header - page_count * 4 - disk_section);
    for (uint64_t i = 0; i < records; ++i)
      if (load<uint8_t>(enc, records_at + i * kDiskRecordSize + 20) == 0)
        disk_data += load<uint32_t>(enc, records_at + i * kDiskRecordSize + 16);
  }
  store<uint64_t>(enc, 32, page_count * page_size + device_state + disk_data);
}

void decode_and_check(std::span<const std::byte> encoded) {
  const auto memory = checkpoint_memory();
  if (auto d = decode_checkpoint(encoded, memory)) check_decoded(*d, memory);
}

}  // namespace
}  // namespace ftd::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ftd;
  const auto input = std::as_bytes(std::span(data, size));
  fuzz::decode_and_check(input);
  if (size < kCheckpointHeaderSize + 8) return 0;
  std::vector<std::byte> forged(input.begin(), input.end());
  fuzz::reseal(forged);
  fuzz::decode_and_check(forged);
  fuzz::make_sizes_consistent(forged);
  fuzz::reseal(forged);
  fuzz::decode_and_check(forged);
  return 0;
}
