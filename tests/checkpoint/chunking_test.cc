// The chunk layer on its own, tested like a framing layer: every way a
// stream of chunks can be cut short, reordered, repeated, forged or mixed
// with another epoch, and what the assembler hands on (only whole,
// contiguous checkpoints of one epoch within the limit).
#include "checkpoint/chunking.h"

#include <gtest/gtest.h>

#include <random>

namespace ftd {
namespace {

std::vector<std::byte> bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

bool same(std::span<const std::byte> a, std::span<const std::byte> b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

// Feeds chunks; returns the completed checkpoint (empty optional if none) or the error.
Result<std::optional<std::vector<std::byte>>> feed(ChunkAssembler& a,
                                                   const std::vector<ChunkView>& chunks) {
  std::optional<std::vector<std::byte>> done;
  for (const auto& c : chunks) {
    FTD_ASSIGN_OR_RETURN(auto r, a.add(c));
    if (r) done.emplace(r->begin(), r->end());
  }
  return done;
}

TEST(Chunking, SplitCoversEveryByteOnceInOrder) {
  for (size_t size : {0, 1, 4095, 4096, 4097, 100000}) {
    for (size_t chunk : {1, 7, 4096, 1 << 20}) {
      if (size / chunk > 20000) continue;
      auto data = bytes(size, size);
      auto chunks = split_checkpoint(9, data, chunk);
      ASSERT_FALSE(chunks.empty());
      uint64_t offset = 0;
      for (size_t i = 0; i < chunks.size(); ++i) {
        EXPECT_EQ(chunks[i].epoch, 9u);
        EXPECT_EQ(chunks[i].offset, offset);
        EXPECT_EQ(chunks[i].total_size, size);
        EXPECT_LE(chunks[i].data.size(), chunk);
        EXPECT_EQ(chunks[i].last, i + 1 == chunks.size());
        offset += chunks[i].data.size();
      }
      EXPECT_EQ(offset, size);
      ChunkAssembler a(1 << 20);
      auto out = feed(a, chunks);
      ASSERT_TRUE(out) << out.error().to_string();
      ASSERT_TRUE(out->has_value()) << size << "/" << chunk;
      EXPECT_TRUE(same(**out, data));
      EXPECT_FALSE(a.partial());
    }
  }
}

TEST(Chunking, ConsecutiveCheckpointsReuseTheAssembler) {
  ChunkAssembler a(1 << 20);
  for (uint64_t epoch = 1; epoch <= 20; ++epoch) {
    auto data = bytes(1000 + epoch * 977, epoch);
    auto out = feed(a, split_checkpoint(epoch, data, 1500));
    ASSERT_TRUE(out && out->has_value()) << epoch;
    EXPECT_TRUE(same(**out, data));
    EXPECT_EQ(a.epoch(), epoch);
  }
}

TEST(Chunking, EveryTruncationLeavesAPartialCheckpointAndHandsNothingOn) {
  auto data = bytes(10000, 1);
  auto chunks = split_checkpoint(3, data, 1000);
  for (size_t keep = 1; keep < chunks.size(); ++keep) {
    ChunkAssembler a(1 << 20);
    auto out = feed(a, {chunks.begin(), chunks.begin() + static_cast<ptrdiff_t>(keep)});
    ASSERT_TRUE(out);
    EXPECT_FALSE(out->has_value()) << keep;
    EXPECT_TRUE(a.partial());
    EXPECT_EQ(a.received_bytes(), keep * 1000);
    EXPECT_EQ(a.total_bytes(), 10000u);
  }
}

TEST(Chunking, EveryGapIsCorrupt) {
  auto data = bytes(10000, 2);
  auto chunks = split_checkpoint(3, data, 1000);
  for (size_t skip = 0; skip + 1 < chunks.size(); ++skip) {
    auto gapped = chunks;
    gapped.erase(gapped.begin() + static_cast<ptrdiff_t>(skip));
    ChunkAssembler a(1 << 20);
    auto out = feed(a, gapped);
    ASSERT_FALSE(out) << "skipped chunk " << skip;
    EXPECT_EQ(out.error().code, ErrorCode::kCorrupt);
    EXPECT_FALSE(a.partial()) << "an error starts afresh";
  }
}

TEST(Chunking, RepeatedOrOverlappingChunksAreCorrupt) {
  auto data = bytes(10000, 3);
  auto chunks = split_checkpoint(3, data, 1000);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    auto repeated = chunks;
    repeated.insert(repeated.begin() + static_cast<ptrdiff_t>(i + 1), chunks[i]);
    ChunkAssembler a(1 << 20);
    auto out = feed(a, repeated);
    ASSERT_FALSE(out) << i;
    EXPECT_EQ(out.error().code, ErrorCode::kCorrupt);
  }
  for (int64_t shift : {-1, 1}) {
    auto shifted = chunks;
    shifted[4].offset = static_cast<uint64_t>(static_cast<int64_t>(shifted[4].offset) + shift);
    ChunkAssembler a(1 << 20);
    auto out = feed(a, shifted);
    ASSERT_FALSE(out) << shift;
    EXPECT_EQ(out.error().code, ErrorCode::kCorrupt);
  }
}

TEST(Chunking, FirstChunkMustStartAtZero) {
  auto data = bytes(3000, 4);
  auto chunks = split_checkpoint(3, data, 1000);
  ChunkAssembler a(1 << 20);
  auto out = feed(a, {chunks[1], chunks[2]});
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, ErrorCode::kCorrupt);
}

TEST(Chunking, OversizedClaimsAreRefusedBeforeAllocating) {
  auto data = bytes(5000, 5);
  ChunkAssembler a(4096);
  auto out = feed(a, split_checkpoint(1, data, 1000));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, ErrorCode::kResourceExhausted);
  EXPECT_FALSE(a.partial());
  // A chunk that would run past its own declared total is corrupt, not oversize.
  auto small = bytes(100, 6);
  ChunkView forged{.epoch = 2, .offset = 0, .total_size = 50, .data = small, .last = true};
  auto r = a.add(forged);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
  // The limit itself is allowed.
  auto exact = bytes(4096, 7);
  auto ok = feed(a, split_checkpoint(3, exact, 1000));
  ASSERT_TRUE(ok && ok->has_value());
}

TEST(Chunking, InterleavedEpochsAreCorrupt) {
  auto a_data = bytes(5000, 8), b_data = bytes(5000, 9);
  auto a_chunks = split_checkpoint(5, a_data, 1000);
  auto b_chunks = split_checkpoint(6, b_data, 1000);
  ChunkAssembler a(1 << 20);
  auto out = feed(a, {a_chunks[0], a_chunks[1], b_chunks[2]});
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, ErrorCode::kCorrupt);
  // The same epoch number with another total size is another checkpoint too.
  auto c_chunks = split_checkpoint(5, bytes(6000, 10), 1000);
  out = feed(a, {a_chunks[0], c_chunks[1]});
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, ErrorCode::kCorrupt);
  // After the error, a clean checkpoint goes through.
  auto ok = feed(a, b_chunks);
  ASSERT_TRUE(ok && ok->has_value());
  EXPECT_TRUE(same(**ok, b_data));
}

TEST(Chunking, LastFlagMustMatchTheEnd) {
  auto data = bytes(3000, 11);
  auto chunks = split_checkpoint(3, data, 1000);
  auto early = chunks;
  early[1].last = true;  // claims the end at 2000 of 3000
  ChunkAssembler a(1 << 20);
  auto out = feed(a, early);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, ErrorCode::kCorrupt);
  auto missing = chunks;
  missing[2].last = false;  // complete but never ends
  out = feed(a, missing);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, ErrorCode::kCorrupt);
}

TEST(Chunking, RandomMutationsNeverHandOnWrongBytes) {
  std::mt19937_64 rng(42);
  auto data = bytes(20000, 12);
  const auto chunks = split_checkpoint(7, data, 1500);
  for (int trial = 0; trial < 2000; ++trial) {
    auto m = chunks;
    auto& c = m[rng() % m.size()];
    switch (rng() % 5) {
      case 0:
        c.epoch ^= uint64_t{1} << (rng() % 64);
        break;
      case 1:
        c.offset ^= uint64_t{1} << (rng() % 64);
        break;
      case 2:
        c.total_size ^= uint64_t{1} << (rng() % 64);
        break;
      case 3:
        c.last = !c.last;
        break;
      case 4:
        c.data = c.data.first(rng() % (c.data.size() + 1));
        break;
    }
    ChunkAssembler a(1 << 20);
    auto out = feed(a, m);
    if (out && out->has_value()) EXPECT_TRUE(same(**out, data)) << "trial " << trial;
  }
}

}  // namespace
}  // namespace ftd
