// The checkpoint byte format: round trips, and a decoder that trusts nothing.
#include "checkpoint/codec.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>

#include "common/hash.h"
#include "tests/checkpoint/forge.h"

namespace ftd {
namespace {

constexpr uint32_t kPage = 4096;
constexpr size_t kMemPages = 16;

std::vector<std::byte> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

// Half random, half a repeating pattern: lz4 and zstd both win on it.
std::vector<std::byte> compressible_bytes(size_t n, uint64_t seed) {
  auto v = random_bytes(n, seed);
  for (size_t i = 0; i < n; ++i)
    if ((i / 512) % 2 == 1) v[i] = static_cast<std::byte>(i % 7);
  return v;
}

std::span<const std::byte> page_of(std::span<const std::byte> mem, uint32_t p) {
  return mem.subspan(size_t{p} * kPage, kPage);
}

// A primary's view: memory (what the replica has) and new contents of some pages.
struct Fixture {
  std::vector<std::byte> memory = compressible_bytes(kMemPages * kPage, 1);
  std::vector<uint32_t> indices{1, 3, 4, 9, 15};
  std::vector<std::byte> pages = compressible_bytes(indices.size() * kPage, 2);
  std::vector<std::byte> base;  // old contents of `indices`, from `memory`
  std::vector<std::byte> device = random_bytes(300, 3);

  Fixture() {
    for (uint32_t p : indices) {
      auto old = page_of(memory, p);
      base.insert(base.end(), old.begin(), old.end());
    }
  }
  CheckpointInput input(bool xor_delta) const {
    return {
        .epoch = 7,
        .base_epoch = 6,
        .page_size = kPage,
        .page_indices = indices,
        .pages = pages,
        .base_pages = xor_delta ? std::span<const std::byte>(base) : std::span<const std::byte>{},
        .device_state = device};
  }
};

std::vector<std::byte> encode_ok(const CheckpointInput& in,
                                 CompressionPolicy policy = CompressionPolicy::kNone) {
  std::vector<std::byte> out;
  auto st = encode_checkpoint(in, policy, out);
  EXPECT_TRUE(st.has_value()) << st.error().to_string();
  return out;
}

struct RoundTripCase {
  CompressionPolicy policy;
  bool xor_delta;
};

class CodecRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(CodecRoundTrip, DecodesToAbsoluteContents) {
  Fixture f;
  std::vector<std::byte> enc;
  auto stats = encode_checkpoint(f.input(GetParam().xor_delta), GetParam().policy, enc);
  ASSERT_TRUE(stats) << stats.error().to_string();
  EXPECT_EQ(stats->encoded_bytes, enc.size());
  EXPECT_EQ(stats->raw_bytes, f.pages.size() + f.device.size());
  switch (GetParam().policy) {
    case CompressionPolicy::kNone:
      EXPECT_EQ(stats->compression, Compression::kNone);
      break;
    case CompressionPolicy::kLz4:
      EXPECT_EQ(stats->compression, Compression::kLz4);
      break;
    case CompressionPolicy::kZstd:
      EXPECT_EQ(stats->compression, Compression::kZstd);
      break;
    case CompressionPolicy::kAuto:
      EXPECT_NE(stats->compression, Compression::kNone);
      break;
  }
  if (stats->compression != Compression::kNone) {
    EXPECT_LT(enc.size(), stats->raw_bytes);
  }

  auto d = decode_checkpoint(enc, f.memory);
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->header.epoch, 7u);
  EXPECT_EQ(d->header.base_epoch, 6u);
  EXPECT_EQ(d->header.compression, stats->compression);
  EXPECT_EQ(bool(d->header.flags & kFlagXorDelta), GetParam().xor_delta);
  EXPECT_EQ(d->page_indices, f.indices);
  EXPECT_TRUE(std::ranges::equal(d->pages, f.pages));
  EXPECT_TRUE(d->device_state == f.device);

  auto peeked = peek_header(enc);
  ASSERT_TRUE(peeked);
  EXPECT_EQ(peeked->page_count, f.indices.size());
}

INSTANTIATE_TEST_SUITE_P(AllPolicies, CodecRoundTrip,
                         ::testing::Values(RoundTripCase{CompressionPolicy::kNone, false},
                                           RoundTripCase{CompressionPolicy::kNone, true},
                                           RoundTripCase{CompressionPolicy::kLz4, false},
                                           RoundTripCase{CompressionPolicy::kLz4, true},
                                           RoundTripCase{CompressionPolicy::kZstd, false},
                                           RoundTripCase{CompressionPolicy::kZstd, true},
                                           RoundTripCase{CompressionPolicy::kAuto, false},
                                           RoundTripCase{CompressionPolicy::kAuto, true}));

TEST(Codec, IncompressiblePayloadIsStoredRaw) {
  Fixture f;
  f.pages = random_bytes(f.pages.size(), 9);
  for (auto policy :
       {CompressionPolicy::kLz4, CompressionPolicy::kZstd, CompressionPolicy::kAuto}) {
    std::vector<std::byte> enc;
    auto stats = encode_checkpoint(f.input(false), policy, enc);
    ASSERT_TRUE(stats);
    EXPECT_EQ(stats->compression, Compression::kNone);
    auto d = decode_checkpoint(enc, f.memory);
    ASSERT_TRUE(d) << d.error().to_string();
    EXPECT_TRUE(std::ranges::equal(d->pages, f.pages));
  }
}

TEST(Codec, XorDeltaIsResolvedAgainstTheGivenMemory) {
  Fixture f;
  auto enc = encode_ok(f.input(true), CompressionPolicy::kZstd);
  // Against a memory whose base pages differ, the result differs exactly by that XOR.
  auto other = f.memory;
  other[size_t{3} * kPage + 5] ^= std::byte{0x5a};
  auto d = decode_checkpoint(enc, other);
  ASSERT_TRUE(d);
  auto expected = f.pages;
  expected[1 * kPage + 5] ^= std::byte{0x5a};  // page 3 is the 2nd entry
  EXPECT_TRUE(std::ranges::equal(d->pages, expected));
  // Unchanged pages become all-zero deltas: compress to almost nothing.
  Fixture same;
  same.pages = same.base;
  std::vector<std::byte> small;
  ASSERT_TRUE(encode_checkpoint(same.input(true), CompressionPolicy::kLz4, small));
  EXPECT_LT(small.size(), same.pages.size() / 20);
  auto d2 = decode_checkpoint(small, same.memory);
  ASSERT_TRUE(d2);
  EXPECT_TRUE(std::ranges::equal(d2->pages, same.base));
}

TEST(Codec, EmptyCheckpointCarriesOnlyDeviceState) {
  std::vector<std::byte> memory(kMemPages * kPage);
  auto device = random_bytes(123, 4);
  for (auto policy : {CompressionPolicy::kNone, CompressionPolicy::kLz4, CompressionPolicy::kZstd,
                      CompressionPolicy::kAuto}) {
    auto enc = encode_ok({.epoch = 3, .base_epoch = 2, .page_size = kPage, .device_state = device},
                         policy);
    auto d = decode_checkpoint(enc, memory);
    ASSERT_TRUE(d) << d.error().to_string();
    EXPECT_EQ(d->header.page_count, 0u);
    EXPECT_TRUE(d->page_indices.empty());
    EXPECT_TRUE(d->pages.empty());
    EXPECT_TRUE(d->device_state == device);
  }
  // Nothing at all is also a valid checkpoint.
  auto enc = encode_ok({.epoch = 1, .page_size = kPage});
  EXPECT_EQ(enc.size(), kCheckpointHeaderSize + 8);
  auto d = decode_checkpoint(enc, memory);
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_TRUE(d->device_state.empty());
}

// zstd beyond lz4's 255x: the decoder's buffer grows to what the data
// really decompresses to (several attempts), and the result is exact.
TEST(Codec, ZstdFarBeyondLz4RatioDecodes) {
  std::vector<std::byte> device(8 << 20);  // zeros: a few hundred bytes of zstd
  device[12345] = std::byte{7};
  std::vector<std::byte> memory(kMemPages * kPage);
  auto enc = encode_ok({.epoch = 2, .base_epoch = 1, .page_size = kPage, .device_state = device},
                       CompressionPolicy::kZstd);
  ASSERT_LT(enc.size() * 255, device.size());
  auto d = decode_checkpoint(enc, memory);
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->device_state, device);
}

TEST(Codec, SyncChunkFlagSurvives) {
  Fixture f;
  auto in = f.input(false);
  in.flags = kFlagSyncChunk;
  in.epoch = 0;
  in.base_epoch = 0;
  in.device_state = {};
  auto enc = encode_ok(in, CompressionPolicy::kLz4);
  auto h = peek_header(enc);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->flags, kFlagSyncChunk);
  auto d = decode_checkpoint(enc, f.memory);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->header.flags, kFlagSyncChunk);
  EXPECT_TRUE(std::ranges::equal(d->pages, f.pages));
}

TEST(Codec, EncodeRejectsBadInput) {
  Fixture f;
  std::vector<std::byte> out;
  auto in = f.input(false);
  std::vector<uint32_t> unsorted{1, 3, 3, 9, 15};
  in.page_indices = unsorted;
  auto r = encode_checkpoint(in, CompressionPolicy::kNone, out);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);

  in = f.input(false);
  in.pages = std::span(f.pages).first(f.pages.size() - 1);
  EXPECT_FALSE(encode_checkpoint(in, CompressionPolicy::kNone, out));

  in = f.input(true);
  in.base_pages = std::span(f.base).first(kPage);
  EXPECT_FALSE(encode_checkpoint(in, CompressionPolicy::kNone, out));

  in = f.input(false);
  in.page_size = 4095;
  EXPECT_FALSE(encode_checkpoint(in, CompressionPolicy::kNone, out));
}

// A small checkpoint for the exhaustive corruption loops.
std::vector<std::byte> small_checkpoint(CompressionPolicy policy, bool xor_delta,
                                        const Fixture& f) {
  CheckpointInput in = f.input(xor_delta);
  in.page_indices = std::span(f.indices).first(2);
  in.pages = std::span(f.pages).first(2 * kPage);
  if (xor_delta) in.base_pages = std::span(f.base).first(2 * kPage);
  return encode_ok(in, policy);
}

TEST(CodecCorruption, AnyFlippedByteIsRejected) {
  Fixture f;
  for (auto policy : {CompressionPolicy::kNone, CompressionPolicy::kZstd}) {
    const auto good = small_checkpoint(policy, true, f);
    ASSERT_TRUE(decode_checkpoint(good, f.memory));
    size_t rejected = 0;
    for (size_t i = 0; i < good.size(); ++i) {
      auto bad = good;
      bad[i] ^= std::byte{0x01};
      auto d = decode_checkpoint(bad, f.memory);
      ASSERT_FALSE(d) << "flip at " << i << " accepted";
      ASSERT_EQ(d.error().code, ErrorCode::kCorrupt) << d.error().to_string();
      ++rejected;
    }
    EXPECT_EQ(rejected, good.size());
  }
}

TEST(CodecCorruption, EveryTruncationIsRejected) {
  Fixture f;
  for (auto policy : {CompressionPolicy::kNone, CompressionPolicy::kLz4}) {
    const auto good = small_checkpoint(policy, false, f);
    for (size_t n = 0; n < good.size(); ++n) {
      auto d = decode_checkpoint(std::span(good).first(n), f.memory);
      ASSERT_FALSE(d) << "prefix of " << n << " bytes accepted";
      ASSERT_EQ(d.error().code, ErrorCode::kCorrupt);
      if (n < kCheckpointHeaderSize + 8) {
        EXPECT_NE(d.error().message.find("truncated"), std::string::npos) << d.error().message;
      }
    }
  }
}

void expect_rejected(const std::vector<std::byte>& enc, std::span<const std::byte> memory,
                     std::string_view needle) {
  auto d = decode_checkpoint(enc, memory);
  ASSERT_FALSE(d) << "forged checkpoint accepted (wanted '" << needle << "')";
  EXPECT_EQ(d.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(d.error().message.find(needle), std::string::npos) << d.error().message;
}

TEST(CodecCorruption, ForgedHeaderFieldsWithValidChecksum) {
  Fixture f;
  const auto good = small_checkpoint(CompressionPolicy::kNone, false, f);
  {
    auto bad = good;
    poke<uint32_t>(bad, 0, 0x12345678);
    reseal(bad);
    expect_rejected(bad, f.memory, "magic");
  }
  {
    auto bad = good;
    poke<uint16_t>(bad, 4, kCheckpointVersion + 1);
    reseal(bad);
    expect_rejected(bad, f.memory, "version");
  }
  {
    auto bad = good;
    poke<uint8_t>(bad, 6, 4);  // 3 is lz4 segments
    reseal(bad);
    expect_rejected(bad, f.memory, "compression");
  }
  {  // claims lz4 but holds raw bytes
    auto bad = good;
    poke<uint8_t>(bad, 6, 1);
    reseal(bad);
    expect_rejected(bad, f.memory, "lz4");
  }
  {
    auto bad = good;
    poke<uint32_t>(bad, 24, 4095);
    reseal(bad);
    expect_rejected(bad, f.memory, "page size");
  }
  {
    auto bad = good;
    poke<uint32_t>(bad, 24, 0);
    reseal(bad);
    expect_rejected(bad, f.memory, "page size");
  }
}

TEST(CodecCorruption, PageIndexBeyondMemory) {
  Fixture f;
  auto bad = small_checkpoint(CompressionPolicy::kNone, false, f);
  poke<uint32_t>(bad, kCheckpointHeaderSize + 4, kMemPages);  // second index
  reseal(bad);
  expect_rejected(bad, f.memory, "beyond memory");
  // The same valid checkpoint against a memory too small for page 3.
  auto good = small_checkpoint(CompressionPolicy::kNone, false, f);
  expect_rejected(good, std::span(f.memory).first(3 * kPage), "beyond memory");
}

TEST(CodecCorruption, UnsortedOrDuplicateIndices) {
  Fixture f;
  auto bad = small_checkpoint(CompressionPolicy::kNone, false, f);
  poke<uint32_t>(bad, kCheckpointHeaderSize, 3);
  poke<uint32_t>(bad, kCheckpointHeaderSize + 4, 1);
  reseal(bad);
  expect_rejected(bad, f.memory, "strictly increasing");
  poke<uint32_t>(bad, kCheckpointHeaderSize, 3);
  poke<uint32_t>(bad, kCheckpointHeaderSize + 4, 3);
  reseal(bad);
  expect_rejected(bad, f.memory, "strictly increasing");
}

TEST(CodecCorruption, SizesThatWouldOverflow) {
  Fixture f;
  const auto good = small_checkpoint(CompressionPolicy::kNone, false, f);
  // A big (never touched) memory so page_count passes the memory bound and the
  // size checks themselves must hold.
  std::vector<std::byte> big_memory(size_t{1} << 26);  // 16384 pages
  const uint64_t raw = 2 * uint64_t{kPage} + f.device.size();
  {
    auto bad = good;
    poke<uint32_t>(bad, 28, 0xffffffffu);
    reseal(bad);
    auto d = decode_checkpoint(bad, big_memory);
    ASSERT_FALSE(d);
  }
  {  // page_count whose index bytes alone exceed the buffer; sizes made consistent.
    for (uint32_t count : {uint32_t{3}, uint32_t{5000}, uint32_t{16384}}) {
      for (uint8_t comp : {0, 1, 2}) {
        auto bad = good;
        poke<uint8_t>(bad, 6, comp);
        poke<uint32_t>(bad, 28, count);
        poke<uint64_t>(bad, 32, uint64_t{count} * kPage + f.device.size());
        // stored size chosen so header + indices + stored wraps to the real body size.
        const uint64_t body = bad.size() - 8;
        poke<uint64_t>(bad, 40, body - kCheckpointHeaderSize - uint64_t{count} * 4);
        reseal(bad);
        auto d = decode_checkpoint(bad, big_memory);
        ASSERT_FALSE(d) << "count " << count << " compression " << int(comp);
        EXPECT_EQ(d.error().code, ErrorCode::kCorrupt);
      }
    }
  }
  {  // stored size of ~2^64
    auto bad = good;
    poke<uint64_t>(bad, 40, ~uint64_t{0} - 10);
    reseal(bad);
    expect_rejected(bad, f.memory, "bytes");
  }
  {  // raw size near 2^64 / device state near 2^64
    auto bad = good;
    poke<uint64_t>(bad, 32, ~uint64_t{0});
    reseal(bad);
    expect_rejected(bad, f.memory, "payload size");
    bad = good;
    poke<uint64_t>(bad, 48, ~uint64_t{0} - raw);
    poke<uint64_t>(bad, 32, raw + (~uint64_t{0} - raw));
    reseal(bad);
    expect_rejected(bad, f.memory, "payload size");
  }
}

// In a child process whose address space may grow by at most 256 MiB: a
// decoder that allocates what a forged header claims dies of bad_alloc there
// instead of passing unnoticed (untouched allocations cost no time).
[[noreturn]] void decode_in_bounded_memory(const std::vector<std::byte>& enc,
                                           std::span<const std::byte> memory) {
  long pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  const rlim_t limit = rlim_t(pages) * ::getpagesize() + (rlim_t{256} << 20);
  const rlimit lim{limit, limit};
  if (pages == 0 || ::setrlimit(RLIMIT_AS, &lim) != 0) std::_Exit(2);
  auto d = decode_checkpoint(enc, memory);
  std::_Exit(!d && d.error().code == ErrorCode::kCorrupt ? 0 : 1);
}
void expect_refused_in_bounded_memory(const std::vector<std::byte>& enc,
                                      std::span<const std::byte> memory) {
  EXPECT_EXIT(decode_in_bounded_memory(enc, memory), testing::ExitedWithCode(0), "");
}

// A checkpoint without pages whose header claims `device_bytes` of device
// state (raw payload) and whose stored payload is `payload`, checksum valid.
std::vector<std::byte> forged_checkpoint(Compression c, uint64_t device_bytes,
                                         std::span<const std::byte> payload) {
  std::vector<std::byte> enc(kCheckpointHeaderSize);
  poke<uint32_t>(enc, 0, kCheckpointMagic);
  poke<uint16_t>(enc, 4, kCheckpointVersion);
  poke<uint8_t>(enc, 6, static_cast<uint8_t>(c));
  poke<uint32_t>(enc, 24, kPage);
  poke<uint64_t>(enc, 32, device_bytes);
  poke<uint64_t>(enc, 40, payload.size());
  poke<uint64_t>(enc, 48, device_bytes);
  enc.insert(enc.end(), payload.begin(), payload.end());
  enc.resize(enc.size() + 8);
  reseal(enc);
  return enc;
}

// A zstd frame whose header names `content_size` (8-byte field, single
// segment) but which holds one RLE block of 16 bytes.
std::vector<std::byte> zstd_frame_claiming(uint64_t content_size) {
  std::vector<std::byte> f(13);
  poke<uint32_t>(f, 0, 0xFD2FB528);  // zstd magic
  poke<uint8_t>(f, 4, 0xE0);         // FCS field of 8 bytes, single segment
  poke<uint64_t>(f, 5, content_size);
  for (uint8_t b : {0x83, 0x00, 0x00, 0x41}) f.push_back(std::byte{b});  // last, RLE, 16 x 'A'
  return f;
}

// Gigabytes claimed by a few bytes must be refused before anything of that
// size is allocated, whatever the compression says.
TEST(CodecCorruption, HugeClaimedRawSizeIsRefusedBeforeAllocating) {
  std::vector<std::byte> memory(kMemPages * kPage);
  const uint64_t huge = uint64_t{1} << 32;  // the largest device state the decoder admits
  for (auto policy : {CompressionPolicy::kLz4, CompressionPolicy::kZstd}) {
    auto device = compressible_bytes(8192, 5);
    auto bad = encode_ok({.epoch = 2, .base_epoch = 1, .page_size = kPage, .device_state = device},
                         policy);
    poke<uint64_t>(bad, 48, huge);
    poke<uint64_t>(bad, 32, huge);
    reseal(bad);
    expect_refused_in_bounded_memory(bad, memory);
  }
  // A zstd frame names its content size, and that claim is as forgeable as
  // our header: here both agree on 4 GiB and only the data can tell.
  expect_refused_in_bounded_memory(
      forged_checkpoint(Compression::kZstd, huge, zstd_frame_claiming(huge)), memory);
  expect_refused_in_bounded_memory(
      forged_checkpoint(Compression::kNone, huge, std::vector<std::byte>(8)), memory);
}

// checkpoint_decode_fuzzer's input (a timeout: ASan spent it on the 1.3 GB
// buffer): uncompressed, 8 payload bytes, 1.3 GB of device state claimed.
// The fuzzer made the two derived header sizes consistent and resealed it
// before decoding; so does this test.
TEST(CodecCorruption, FuzzerUncompressedPayloadShorterThanClaimed) {
  std::vector<std::byte> enc;
  for (uint8_t b :
       {0x46, 0x54, 0x43, 0x4b, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x07, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x99, 0x1d, 0x02, 0x00, 0x70,
        0x50, 0x00, 0x00, 0x00, 0xfc, 0x30, 0x04, 0x00, 0x50, 0x52, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xae, 0xee, 0x62, 0x9a, 0x5b, 0x34, 0xac, 0x45})
    enc.push_back(std::byte{b});
  // Found at version 1, when bytes 56-63 were unchecked padding; same bytes otherwise.
  poke<uint16_t>(enc, 4, kCheckpointVersion);
  poke<uint64_t>(enc, 56, 0);
  poke<uint64_t>(enc, 32, 0x52500004);  // raw = device state (no pages)
  poke<uint64_t>(enc, 40, 8);           // stored = what follows the header
  reseal(enc);
  std::vector<std::byte> memory(kMemPages * kPage);
  expect_refused_in_bounded_memory(enc, memory);
  expect_rejected(enc, memory, "uncompressed payload is 8 bytes");
}

// Seeded random mutations with a recomputed checksum: the decoder must return
// an error or a self-consistent checkpoint, never crash or over-read.
TEST(CodecCorruption, RandomMutationsNeverCrash) {
  Fixture f;
  std::vector<std::vector<std::byte>> seeds;
  for (auto policy : {CompressionPolicy::kNone, CompressionPolicy::kLz4, CompressionPolicy::kZstd})
    for (bool x : {false, true}) seeds.push_back(small_checkpoint(policy, x, f));
  std::mt19937_64 rng(20240601);
  size_t decoded = 0, rejected = 0;
  for (int iter = 0; iter < 1000; ++iter) {
    auto enc = seeds[rng() % seeds.size()];
    const size_t hot = kCheckpointHeaderSize + 8;  // header + first indices
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k) {
      const size_t limit = (rng() % 2) ? hot : enc.size() - 8;
      const size_t at = rng() % limit;
      switch (rng() % 3) {
        case 0:
          enc[at] ^= static_cast<std::byte>(1u << (rng() % 8));
          break;
        case 1:
          enc[at] = static_cast<std::byte>(rng());
          break;
        case 2:
          enc[at] = (rng() % 2) ? std::byte{0xff} : std::byte{0};
          break;
      }
    }
    if (rng() % 8 == 0) enc.resize(kCheckpointHeaderSize + 8 + rng() % (enc.size() - 71));
    reseal(enc);
    auto d = decode_checkpoint(enc, f.memory);
    if (d) {
      ++decoded;
      ASSERT_EQ(d->page_indices.size(), d->header.page_count);
      ASSERT_EQ(d->pages.size(), size_t{d->header.page_count} * d->header.page_size);
      ASSERT_EQ(d->device_state.size(), d->header.device_state_size);
    } else {
      ++rejected;
      ASSERT_EQ(d.error().code, ErrorCode::kCorrupt) << d.error().to_string();
    }
  }
  EXPECT_EQ(decoded + rejected, 1000u);
  EXPECT_GT(rejected, 500u);
}

}  // namespace
}  // namespace ftd
