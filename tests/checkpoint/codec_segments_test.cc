// kLz4Segments (codec.h, version 3): a large payload split into independent
// lz4 blocks that the encoder and decoder process on several threads. The
// output must not depend on the scheduling, a decoder without workers must
// read it, and a forged segment table must be refused before any allocation.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "checkpoint/codec.h"
#include "common/range_workers.h"
#include "tests/checkpoint/forge.h"

namespace ftd {
namespace {

constexpr uint32_t kPage = 4096;
constexpr size_t kMemPages = 2048;  // 8 MiB replica image
constexpr size_t kDirty = 600;      // 2.4 MiB of pages: above kMinSegmentedBytes

// A replica image and the new contents of every third page: each new page is
// its old one with a few 256-byte writes, as a guest dirties it.
struct Guest {
  std::vector<std::byte> memory = std::vector<std::byte>(kMemPages * kPage);
  std::vector<uint32_t> indices;
  std::vector<std::byte> pages;
  std::vector<std::byte> device = std::vector<std::byte>(300, std::byte{7});

  Guest() {
    std::mt19937_64 rng(42);
    for (auto& b : memory) b = static_cast<std::byte>(rng() % 4);
    for (uint32_t p = 0; indices.size() < kDirty; p += 3) indices.push_back(p);
    for (uint32_t p : indices) {
      std::vector<std::byte> page(memory.begin() + p * kPage, memory.begin() + (p + 1) * kPage);
      for (int w = 0; w < 3; ++w) {
        const size_t at = (rng() % (kPage / 256)) * 256;
        for (size_t i = 0; i < 256; ++i) page[at + i] = static_cast<std::byte>(rng());
      }
      pages.insert(pages.end(), page.begin(), page.end());
    }
  }
  CheckpointInput input() const {
    return {.epoch = 9,
            .base_epoch = 8,
            .page_size = kPage,
            .page_indices = indices,
            .pages = pages,
            .base_memory = memory,
            .device_state = device};
  }
};

ByteBuffer encode(const Guest& g, RangeWorkers* workers, EncodeStats* stats = nullptr) {
  ByteBuffer out;
  EncodeScratch scratch;
  auto st = encode_checkpoint(g.input(), CompressionPolicy::kAuto, out, scratch, workers);
  EXPECT_TRUE(st) << st.error().to_string();
  if (st && stats) *stats = *st;
  return out;
}

size_t payload_offset() { return kCheckpointHeaderSize + kDirty * 4; }

TEST(CodecSegments, ParallelEncodeDecodesWithAndWithoutWorkers) {
  Guest g;
  for (unsigned ways : {2u, 3u}) {
    RangeWorkers workers(ways);
    EncodeStats stats;
    const ByteBuffer enc = encode(g, &workers, &stats);
    EXPECT_EQ(stats.compression, Compression::kLz4Segments);
    EXPECT_LT(stats.encoded_bytes, stats.raw_bytes / 3);
    uint32_t count;
    std::memcpy(&count, enc.data() + payload_offset(), 4);
    EXPECT_EQ(count, ways);
    // The same bytes whatever the interleaving of the workers.
    EXPECT_TRUE(enc == encode(g, &workers));
    for (RangeWorkers* dw : {static_cast<RangeWorkers*>(nullptr), &workers}) {
      DecodedCheckpoint d;
      auto st = decode_checkpoint_into(enc, g.memory, d, dw);
      ASSERT_TRUE(st) << st.error().to_string();
      EXPECT_EQ(d.page_indices, g.indices);
      EXPECT_EQ(d.pages.size(), g.pages.size());
      EXPECT_EQ(std::memcmp(d.pages.data(), g.pages.data(), g.pages.size()), 0);
      EXPECT_TRUE(d.device_state == g.device);
    }
  }
}

TEST(CodecSegments, OneWayOrSmallPayloadKeepsOneLz4Block) {
  Guest g;
  RangeWorkers one(1);
  EncodeStats stats;
  encode(g, &one, &stats);
  EXPECT_EQ(stats.compression, Compression::kLz4);
  encode(g, nullptr, &stats);
  EXPECT_EQ(stats.compression, Compression::kLz4);
  // Below kMinSegmentedBytes a wake-up of the workers costs more than it saves.
  RangeWorkers two(2);
  CheckpointInput small = g.input();
  small.page_indices = std::span(g.indices).first(100);
  small.pages = std::span(g.pages).first(100 * kPage);
  ByteBuffer out;
  EncodeScratch scratch;
  auto st = encode_checkpoint(small, CompressionPolicy::kAuto, out, scratch, &two);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->compression, Compression::kLz4);
}

void expect_refused(std::vector<std::byte> enc, const Guest& g, std::string_view needle) {
  reseal(enc);  // xxh3 is no MAC: only the decoder's own checks stand in the way
  RangeWorkers workers(2);
  for (RangeWorkers* w : {static_cast<RangeWorkers*>(nullptr), &workers}) {
    DecodedCheckpoint d;
    auto st = decode_checkpoint_into(enc, g.memory, d, w);
    ASSERT_FALSE(st) << "forged segment table accepted (wanted '" << needle << "')";
    EXPECT_EQ(st.error().code, ErrorCode::kCorrupt);
    EXPECT_NE(st.error().message.find(needle), std::string::npos) << st.error().message;
  }
}

TEST(CodecSegments, ForgedSegmentTablesAreRefused) {
  Guest g;
  RangeWorkers workers(2);
  const ByteBuffer good_buf = encode(g, &workers);
  const std::vector<std::byte> good(good_buf.begin(), good_buf.end());
  const size_t table = payload_offset();
  uint32_t raw0, stored0;
  std::memcpy(&raw0, good.data() + table + 4, 4);
  std::memcpy(&stored0, good.data() + table + 8, 4);

  auto forged = [&](size_t at, uint32_t v) {
    auto e = good;
    poke<uint32_t>(e, at, v);
    return e;
  };
  expect_refused(forged(table, 0), g, "payload segments");
  expect_refused(forged(table, kMaxPayloadSegments + 1), g, "payload segments");
  expect_refused(forged(table, 1000000), g, "payload segments");
  expect_refused(forged(table, 3), g, "segment");  // a third entry read from the blocks
  expect_refused(forged(table + 4, raw0 + kPage), g, "segments hold");
  expect_refused(forged(table + 8, stored0 - 1), g, "segments hold");
  expect_refused(forged(table + 4, 0), g, "cannot hold");
  // A claim far beyond what lz4 can expand to: refused before allocating.
  expect_refused(forged(table + 4, 0x7fffffffu), g, "cannot hold");
  // Moving bytes between two segments keeps every sum: the blocks then decode wrong.
  {
    auto e = forged(table + 4, raw0 - 8);
    uint32_t raw1;
    std::memcpy(&raw1, good.data() + table + 12, 4);
    poke<uint32_t>(e, table + 12, raw1 + 8);
    expect_refused(e, g, "does not decompress");
  }
  // A damaged block inside an honest table.
  {
    auto e = good;
    e[table + 4 + 2 * 8 + stored0 / 2] ^= std::byte{0x5a};
    reseal(e);
    DecodedCheckpoint d;
    auto st = decode_checkpoint_into(e, g.memory, d, &workers);
    if (st) {
      // lz4 may decode a flipped literal to other bytes of the right length:
      // the checksum is the primary's guard, the decoder only promises bounds.
      EXPECT_EQ(d.pages.size(), g.pages.size());
    } else {
      EXPECT_EQ(st.error().code, ErrorCode::kCorrupt);
    }
  }
}

TEST(CodecSegments, TruncatedSegmentedPayloadIsRefused) {
  Guest g;
  RangeWorkers workers(2);
  const ByteBuffer good = encode(g, &workers);
  for (size_t cut : {size_t{1}, size_t{100}, good.size() / 2}) {
    std::vector<std::byte> e(good.begin(), good.end() - static_cast<ptrdiff_t>(cut));
    DecodedCheckpoint d;
    EXPECT_FALSE(decode_checkpoint_into(e, g.memory, d, &workers));
  }
}

}  // namespace
}  // namespace ftd
