#include "disk/disk_write_log.h"

#include <gtest/gtest.h>

#include "tests/disk/disk_test_util.h"

namespace ftd {
namespace {

using testing::pattern;
using testing::TempDir;

std::vector<std::byte> bytes_of(const DiskWrite& w) { return {w.data.begin(), w.data.end()}; }

TEST(DiskWriteLog, TakeReturnsRecordsInOrderAndEmptiesTheLog) {
  TempDir dir;
  DiskWriteLog log({.memory_limit = 1 << 20, .spill_dir = dir.path()});
  auto a = pattern(1, 512);
  ASSERT_EQ(*log.append_data(4096, a), 1u);
  ASSERT_EQ(*log.append_zeroes(0, 8192), 2u);
  auto epoch = log.take_epoch();
  ASSERT_TRUE(epoch);
  ASSERT_EQ(epoch->size(), 2u);
  EXPECT_EQ((*epoch)[0].seq, 1u);
  EXPECT_EQ((*epoch)[0].offset, 4096u);
  EXPECT_EQ((*epoch)[0].kind, DiskWrite::Kind::kData);
  EXPECT_EQ(bytes_of((*epoch)[0]), a);
  EXPECT_EQ((*epoch)[1].kind, DiskWrite::Kind::kZeroes);
  EXPECT_EQ((*epoch)[1].length, 8192u);
  EXPECT_TRUE((*epoch)[1].data.empty());
  EXPECT_TRUE(log.take_epoch()->empty());
  EXPECT_EQ(*log.append_zeroes(0, 1), 3u);  // seqs continue across epochs
}

TEST(DiskWriteLog, SpillsBeyondTheMemoryLimitAndReadsBackExactBytes) {
  TempDir dir;
  DiskWriteLog log({.memory_limit = 64 * 1024, .spill_dir = dir.path()});
  for (int round = 0; round < 2; ++round) {  // the spill file is reused after a take
    std::vector<std::vector<std::byte>> sent;
    for (uint64_t i = 0; i < 32; ++i) {
      sent.push_back(pattern(round * 100 + i, 16 * 1024));
      ASSERT_TRUE(log.append_data(i * 16 * 1024, sent.back()));
    }
    auto stats = log.stats();
    EXPECT_EQ(stats.pending_records, 32u);
    EXPECT_EQ(stats.pending_bytes, 32u * 16 * 1024);
    EXPECT_EQ(stats.spilled_bytes, 28u * 16 * 1024);  // 4 × 16 KiB fit the limit
    auto epoch = log.take_epoch();
    ASSERT_TRUE(epoch);
    ASSERT_EQ(epoch->size(), 32u);
    for (size_t i = 0; i < 32; ++i) EXPECT_EQ(bytes_of((*epoch)[i]), sent[i]) << i;
    EXPECT_EQ(log.stats().spilled_bytes, 0u);
  }
}

TEST(DiskWriteLog, UnwritableSpillDirFailsTheWriteAndKeepsEarlierRecords) {
  DiskWriteLog log({.memory_limit = 1024, .spill_dir = "/nonexistent/ftd-spill"});
  auto a = pattern(7, 1024);
  ASSERT_TRUE(log.append_data(0, a));
  auto failed = log.append_data(1024, pattern(8, 1024));
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("/nonexistent/ftd-spill"), std::string::npos);
  auto epoch = log.take_epoch();
  ASSERT_TRUE(epoch);
  ASSERT_EQ(epoch->size(), 1u);
  EXPECT_EQ(bytes_of((*epoch)[0]), a);
}

}  // namespace
}  // namespace ftd
