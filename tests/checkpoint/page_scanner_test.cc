#include "checkpoint/page_scanner.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "common/hash.h"

namespace ftd {
namespace {

std::vector<uint32_t> all_pages(size_t n) {
  std::vector<uint32_t> v(n);
  std::iota(v.begin(), v.end(), 0u);
  return v;
}

std::vector<std::byte> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

class PageScannerThreads : public ::testing::TestWithParam<unsigned> {};

TEST_P(PageScannerThreads, FirstScanReturnsEveryPageThenNothing) {
  PageScanner scanner(4096, GetParam());
  auto mem = random_bytes(4096 * 37, 1);
  EXPECT_EQ(scanner.scan(mem), all_pages(37));
  EXPECT_TRUE(scanner.scan(mem).empty());
  EXPECT_TRUE(scanner.scan(mem).empty());
}

TEST_P(PageScannerThreads, FindsExactlyTheModifiedPages) {
  const size_t page = 4096, pages = 101;
  PageScanner scanner(page, GetParam());
  auto mem = random_bytes(page * pages, 2);
  scanner.scan(mem);

  // Edges: first byte of page 0, last byte of a middle page, last byte of the
  // last page, and one byte in the middle.
  mem[0] ^= std::byte{1};
  mem[page * 50 - 1] ^= std::byte{0x80};
  mem[page * pages - 1] ^= std::byte{0x10};
  mem[page * 77 + 1234] ^= std::byte{0xff};
  EXPECT_EQ(scanner.scan(mem), (std::vector<uint32_t>{0, 49, 77, 100}));
  EXPECT_TRUE(scanner.scan(mem).empty());

  // Writing the same bytes back is not a change.
  std::memcpy(mem.data() + page * 3, mem.data() + page * 3, page);
  EXPECT_TRUE(scanner.scan(mem).empty());
}

TEST_P(PageScannerThreads, MatchesMemcmpOracleOverRandomRounds) {
  const size_t page = 512, pages = 333;
  PageScanner scanner(page, GetParam());
  auto mem = random_bytes(page * pages, 3);
  scanner.scan(mem);
  std::mt19937 rng(4);
  for (int round = 0; round < 50; ++round) {
    auto before = mem;
    const int writes = static_cast<int>(rng() % 40);
    for (int w = 0; w < writes; ++w) mem[rng() % mem.size()] = static_cast<std::byte>(rng());
    std::vector<uint32_t> expected;
    for (uint32_t p = 0; p < pages; ++p)
      if (std::memcmp(mem.data() + p * page, before.data() + p * page, page) != 0)
        expected.push_back(p);
    ASSERT_EQ(scanner.scan(mem), expected) << "round " << round;
  }
}

TEST_P(PageScannerThreads, PartialLastPageIsAPage) {
  PageScanner scanner(4096, GetParam());
  auto mem = random_bytes(4096 * 5 + 100, 5);
  EXPECT_EQ(scanner.scan(mem), all_pages(6));
  mem.back() ^= std::byte{1};
  EXPECT_EQ(scanner.scan(mem), (std::vector<uint32_t>{5}));
  mem[4096 * 5] ^= std::byte{1};
  EXPECT_EQ(scanner.scan(mem), (std::vector<uint32_t>{5}));
  EXPECT_TRUE(scanner.scan(mem).empty());
  EXPECT_EQ(scanner.page_hashes()[5], hash64(std::span(mem).subspan(4096 * 5)));
}

TEST_P(PageScannerThreads, ResetMakesNextScanReturnEverything) {
  PageScanner scanner(1024, GetParam());
  auto mem = random_bytes(1024 * 16, 6);
  scanner.scan(mem);
  EXPECT_TRUE(scanner.scan(mem).empty());
  scanner.reset();
  EXPECT_TRUE(scanner.page_hashes().empty());
  EXPECT_EQ(scanner.scan(mem), all_pages(16));
  EXPECT_TRUE(scanner.scan(mem).empty());
}

TEST_P(PageScannerThreads, SizeChangeCountsAsFirstScan) {
  PageScanner scanner(1024, GetParam());
  auto mem = random_bytes(1024 * 16, 7);
  scanner.scan(mem);
  EXPECT_EQ(scanner.scan(std::span(mem).first(1024 * 8)), all_pages(8));
  EXPECT_TRUE(scanner.scan(std::span(mem).first(1024 * 8)).empty());
}

TEST_P(PageScannerThreads, MoreThreadsThanPagesAndEmptyRegion) {
  PageScanner scanner(4096, GetParam());
  EXPECT_TRUE(scanner.scan({}).empty());
  auto mem = random_bytes(4096 * 2, 8);
  EXPECT_EQ(scanner.scan(mem), all_pages(2));
  mem[4096] ^= std::byte{1};
  EXPECT_EQ(scanner.scan(mem), (std::vector<uint32_t>{1}));
}

TEST_P(PageScannerThreads, HashesAreXxh3OfEachPage) {
  PageScanner scanner(256, GetParam());
  auto mem = random_bytes(256 * 9, 9);
  scanner.scan(mem);
  ASSERT_EQ(scanner.page_hashes().size(), 9u);
  for (size_t p = 0; p < 9; ++p)
    EXPECT_EQ(scanner.page_hashes()[p], hash64(std::span(mem).subspan(p * 256, 256)));
}

INSTANTIATE_TEST_SUITE_P(Threads, PageScannerThreads, ::testing::Values(1u, 2u, 3u, 8u));

TEST(PageScanner, ZeroThreadsMeansOne) {
  PageScanner scanner(4096, 0);
  EXPECT_EQ(scanner.threads(), 1u);
  auto mem = random_bytes(4096 * 3, 10);
  EXPECT_EQ(scanner.scan(mem), all_pages(3));
}

TEST(PageScanner, ManyScansReuseTheSameWorkers) {
  // Many back-to-back scans exercise the worker hand-off (a lost wake-up would hang).
  PageScanner scanner(64, 4);
  auto mem = random_bytes(64 * 100, 11);
  scanner.scan(mem);
  for (int i = 0; i < 2000; ++i) {
    const size_t p = static_cast<size_t>(i) % 100;
    mem[p * 64] ^= std::byte{1};
    ASSERT_EQ(scanner.scan(mem), (std::vector<uint32_t>{static_cast<uint32_t>(p)}));
  }
}

}  // namespace
}  // namespace ftd
