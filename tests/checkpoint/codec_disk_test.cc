// The checkpoint's disk section: round trips, and every bound the decoder
// enforces on a forged one (with a valid checksum, so the bound itself is hit).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "checkpoint/codec.h"
#include "common/hash.h"
#include "tests/checkpoint/forge.h"

namespace ftd {
namespace {

constexpr uint32_t kPage = 4096;
constexpr uint64_t kDisk = 1 << 20;

ByteBuffer random_data(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ByteBuffer b;
  b.resize(n);
  for (auto& x : b) x = static_cast<std::byte>(rng());
  return b;
}

DiskEpoch sample_disk() {
  DiskEpoch d{.disk_size = kDisk, .complete = true};
  d.writes.push_back({.seq = 41, .offset = 0, .length = 4096, .data = random_data(4096, 1)});
  d.writes.push_back(
      {.seq = 42, .offset = 8192, .length = 65536, .kind = DiskWrite::Kind::kZeroes});
  d.writes.push_back(
      {.seq = 43, .offset = kDisk - 512, .length = 512, .data = random_data(512, 2)});
  return d;
}

std::vector<std::byte> encode(const DiskEpoch& disk, CompressionPolicy policy, uint8_t flags = 0) {
  std::vector<std::byte> device(100, std::byte{7});
  std::vector<std::byte> out;
  auto st = encode_checkpoint({.epoch = 5,
                               .base_epoch = 4,
                               .flags = flags,
                               .page_size = kPage,
                               .device_state = device,
                               .disk = &disk},
                              policy, out);
  EXPECT_TRUE(st) << st.error().to_string();
  return out;
}

// Every forgery here is resealed: the bound itself must catch it.
template <typename T>
void forge(std::vector<std::byte>& enc, size_t offset, T v) {
  poke(enc, offset, v);
  reseal(enc);
}

// Offsets of record fields in an encoded checkpoint without pages.
constexpr size_t kDiskSizeAt = kCheckpointHeaderSize;
size_t record_at(size_t i) { return kCheckpointHeaderSize + 8 + i * kDiskRecordSize; }

const std::vector<std::byte> kMemory(4 * kPage);

std::string decode_error(const std::vector<std::byte>& enc) {
  auto d = decode_checkpoint(enc, kMemory);
  EXPECT_FALSE(d);
  return d ? "" : d.error().message;
}

TEST(CodecDisk, RoundTripsEveryPolicy) {
  const DiskEpoch disk = sample_disk();
  for (auto policy : {CompressionPolicy::kNone, CompressionPolicy::kLz4, CompressionPolicy::kZstd,
                      CompressionPolicy::kAuto}) {
    auto enc = encode(disk, policy);
    auto d = decode_checkpoint(enc, kMemory);
    ASSERT_TRUE(d) << d.error().to_string();
    EXPECT_EQ(d->disk.disk_size, kDisk);
    EXPECT_TRUE(d->disk.complete);
    ASSERT_EQ(d->disk.writes.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(d->disk.writes[i].seq, disk.writes[i].seq);
      EXPECT_EQ(d->disk.writes[i].offset, disk.writes[i].offset);
      EXPECT_EQ(d->disk.writes[i].length, disk.writes[i].length);
      EXPECT_EQ(d->disk.writes[i].kind, disk.writes[i].kind);
      EXPECT_TRUE(std::ranges::equal(d->disk.writes[i].data, disk.writes[i].data));
    }
    EXPECT_EQ(d->device_state, std::vector<std::byte>(100, std::byte{7}));
  }
}

TEST(CodecDisk, IncompleteAndEmptyAndAbsent) {
  DiskEpoch empty{.disk_size = kDisk, .complete = false};
  auto d = decode_checkpoint(encode(empty, CompressionPolicy::kAuto), kMemory);
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->disk.disk_size, kDisk);
  EXPECT_FALSE(d->disk.complete);
  EXPECT_TRUE(d->disk.writes.empty());
  // No disk: no section at all, the checkpoint is as small as before.
  auto none = encode(DiskEpoch{}, CompressionPolicy::kNone);
  auto d2 = decode_checkpoint(none, kMemory);
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->disk.disk_size, 0u);
  EXPECT_EQ(none.size(), kCheckpointHeaderSize + 100 + 8);
}

TEST(CodecDisk, EncoderRejectsBadWrites) {
  auto rejects = [](DiskEpoch disk, uint8_t flags = 0) {
    std::vector<std::byte> out;
    auto st = encode_checkpoint({.epoch = 1, .flags = flags, .page_size = kPage, .disk = &disk},
                                CompressionPolicy::kNone, out);
    EXPECT_FALSE(st);
    return st ? std::string() : st.error().message;
  };
  auto d = sample_disk();
  d.writes[1].seq = 44;
  EXPECT_NE(rejects(d).find("does not follow"), std::string::npos);
  d = sample_disk();
  d.writes[2].offset = kDisk - 511;
  EXPECT_NE(rejects(d).find("beyond"), std::string::npos);
  d = sample_disk();
  d.writes[0].data.resize(10);
  EXPECT_NE(rejects(d).find("carries 10 bytes"), std::string::npos);
  EXPECT_NE(rejects(sample_disk(), kFlagSyncChunk).find("sync chunk"), std::string::npos);
  d = sample_disk();
  d.disk_size = 0;
  EXPECT_NE(rejects(d).find("without a disk size"), std::string::npos);
}

TEST(CodecDisk, DecoderRejectsForgedRecords) {
  const auto good = encode(sample_disk(), CompressionPolicy::kNone);
  auto enc = good;
  forge<uint64_t>(enc, record_at(1), 50);  // seq gap
  EXPECT_NE(decode_error(enc).find("does not follow"), std::string::npos);
  enc = good;
  forge<uint64_t>(enc, record_at(0), 0);  // seq 0
  EXPECT_NE(decode_error(enc).find("does not follow"), std::string::npos);
  enc = good;
  forge<uint64_t>(enc, record_at(2) + 8, UINT64_MAX - 100);  // offset + length wraps
  EXPECT_NE(decode_error(enc).find("beyond"), std::string::npos);
  enc = good;
  forge<uint64_t>(enc, kDiskSizeAt, kDisk / 2);  // disk shrank under the last write
  EXPECT_NE(decode_error(enc).find("beyond"), std::string::npos);
  enc = good;
  forge<uint64_t>(enc, kDiskSizeAt, 0);
  EXPECT_FALSE(decode_checkpoint(enc, kMemory));
  enc = good;
  forge<uint32_t>(enc, record_at(1) + 16, 0);  // zero length
  EXPECT_NE(decode_error(enc).find("1 to"), std::string::npos);
  enc = good;
  forge<uint32_t>(enc, record_at(1) + 16, kMaxDiskWriteLength + 1);
  EXPECT_NE(decode_error(enc).find("1 to"), std::string::npos);
  enc = good;
  forge<uint8_t>(enc, record_at(1) + 20, 2);  // unknown kind
  EXPECT_NE(decode_error(enc).find("unknown kind"), std::string::npos);
  enc = good;
  forge<uint8_t>(enc, record_at(1) + 22, 1);  // padding
  EXPECT_NE(decode_error(enc).find("padding"), std::string::npos);
  enc = good;
  // A zeroes record turned into data: the payload no longer holds its bytes.
  forge<uint8_t>(enc, record_at(1) + 20, 0);
  EXPECT_NE(decode_error(enc).find("disk bytes"), std::string::npos);
}

TEST(CodecDisk, DecoderRejectsForgedHeaderFields) {
  const auto good = encode(sample_disk(), CompressionPolicy::kNone);
  auto enc = good;
  forge<uint32_t>(enc, 56, 4);  // one record more than the section holds
  EXPECT_FALSE(decode_checkpoint(enc, kMemory));
  enc = good;
  forge<uint32_t>(enc, 56, 2);  // one fewer: the rest is taken for payload, sizes disagree
  EXPECT_FALSE(decode_checkpoint(enc, kMemory));
  enc = good;
  forge<uint32_t>(enc, 56, kMaxDiskRecords + 1);
  EXPECT_NE(decode_error(enc).find("at most"), std::string::npos);
  enc = good;
  forge<uint8_t>(enc, 60, 0);  // records without the present flag
  EXPECT_NE(decode_error(enc).find("disk flags"), std::string::npos);
  enc = good;
  forge<uint8_t>(enc, 60, 8);  // unknown flag
  EXPECT_NE(decode_error(enc).find("disk flags"), std::string::npos);
  enc = good;
  forge<uint8_t>(enc, 62, 1);  // reserved
  EXPECT_NE(decode_error(enc).find("reserved"), std::string::npos);
  enc = good;
  forge<uint16_t>(enc, 4, 1);  // a version-1 peer
  EXPECT_NE(decode_error(enc).find("version"), std::string::npos);
  // A sync chunk must not carry writes: forge the flag on a checkpoint with some.
  enc = good;
  forge<uint8_t>(enc, 7, kFlagSyncChunk);
  EXPECT_NE(decode_error(enc).find("sync chunk"), std::string::npos);
}

TEST(CodecDisk, TooMuchDataInOneCheckpointIsRefused) {
  // 33 records of 32 MiB claimed (data kind) exceed the 1 GiB cap before any
  // allocation: the records alone are forged, the payload is tiny.
  DiskEpoch disk{.disk_size = uint64_t{64} << 30, .complete = true};
  for (uint64_t i = 0; i < 33; ++i)
    disk.writes.push_back(
        {.seq = i + 1, .offset = i << 25, .length = 1, .kind = DiskWrite::Kind::kZeroes});
  auto enc = encode(disk, CompressionPolicy::kNone);
  for (size_t i = 0; i < 33; ++i) {
    std::memcpy(enc.data() + record_at(i) + 16, &kMaxDiskWriteLength, 4);
    enc[record_at(i) + 20] = std::byte{0};
  }
  reseal(enc);
  EXPECT_NE(decode_error(enc).find("more than"), std::string::npos);
}

TEST(CodecDisk, EveryTruncationAndFlipIsRejected) {
  const auto good = encode(sample_disk(), CompressionPolicy::kLz4);
  for (size_t n = 0; n < good.size(); n += 7)
    EXPECT_FALSE(decode_checkpoint(std::span(good).first(n), kMemory)) << n;
  for (size_t i = 0; i < good.size(); i += 5) {
    auto enc = good;
    enc[i] ^= std::byte{0x10};
    EXPECT_FALSE(decode_checkpoint(enc, kMemory)) << i;
  }
}

}  // namespace
}  // namespace ftd
