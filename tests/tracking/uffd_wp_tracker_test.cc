// uffd-wp tracker against a child that writes known pages: exact sets.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "tests/tracking/writer_child.h"
#include "tracking/kernel_probes.h"
#include "tracking/soft_dirty_tracker.h"
#include "tracking/uffd_wp_tracker.h"

namespace ftd {
namespace {

using testing::WriterChild;

constexpr size_t kBytes = 64 << 20;  // 16,384 pages

TrackedRange range_of(const WriterChild& w) {
  return {.pid = w.pid(), .start = w.address(), .length = w.bytes(), .page_size = 4096};
}

std::vector<uint32_t> random_pages(size_t writes, size_t pages, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(pages - 1));
  std::vector<uint32_t> out(writes);
  for (auto& p : out) p = pick(rng);
  return out;  // with repeats, unordered: as a guest writes
}

std::vector<uint32_t> sorted_unique(std::vector<uint32_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

class UffdWpTrackerTest : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    if (auto st = probe_uffd_wp(); !st) GTEST_SKIP() << st.error().to_string();
  }
};

TEST_P(UffdWpTrackerTest, ReportsExactlyTheWrittenPagesEachEpoch) {
  auto child = WriterChild::start(kBytes);
  ASSERT_TRUE(child) << child.error().to_string();
  auto tracker = UffdWpTracker::attach(range_of(*child), WriterChild::kUffdFd);
  ASSERT_TRUE(tracker) << tracker.error().to_string();
  // Epoch 1 hits mostly never-touched pages (WP_UNPOPULATED), later epochs
  // hit pages present and re-protected by the previous scan.
  for (uint32_t epoch = 1; epoch <= 3; ++epoch) {
    auto writes = random_pages(GetParam(), child->pages(), epoch * 7919 + GetParam());
    ASSERT_TRUE(child->write_pages(writes));
    auto got = (*tracker)->collect();
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, sorted_unique(writes)) << "epoch " << epoch;
  }
  auto quiet = (*tracker)->collect();
  ASSERT_TRUE(quiet);
  EXPECT_TRUE(quiet->empty()) << quiet->size() << " pages reported with no writes";
  EXPECT_EQ((*tracker)->counters().collections, 4u);
}

INSTANTIATE_TEST_SUITE_P(Writes, UffdWpTrackerTest, ::testing::Values(100, 1000, 10000));

TEST(UffdWpTracker, WholeRangeAndLastPage) {
  if (auto st = probe_uffd_wp(); !st) GTEST_SKIP() << st.error().to_string();
  auto child = WriterChild::start(8 << 20);
  ASSERT_TRUE(child) << child.error().to_string();
  auto tracker = UffdWpTracker::attach(range_of(*child), WriterChild::kUffdFd);
  ASSERT_TRUE(tracker) << tracker.error().to_string();
  // Every page: more regions than one PAGEMAP_SCAN call returns is not the
  // point here (runs merge); the edges are.
  std::vector<uint32_t> all(child->pages());
  for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
  ASSERT_TRUE(child->write_pages(all));
  EXPECT_EQ((*tracker)->collect().value(), all);
  const std::vector<uint32_t> last = {static_cast<uint32_t>(child->pages() - 1)};
  ASSERT_TRUE(child->write_pages(last));
  EXPECT_EQ((*tracker)->collect().value(), last);
}

TEST(UffdWpTracker, ManySeparateRunsNeedSeveralScanCalls) {
  if (auto st = probe_uffd_wp(); !st) GTEST_SKIP() << st.error().to_string();
  auto child = WriterChild::start(kBytes);
  ASSERT_TRUE(child) << child.error().to_string();
  auto tracker = UffdWpTracker::attach(range_of(*child), WriterChild::kUffdFd);
  ASSERT_TRUE(tracker) << tracker.error().to_string();
  // Every other page: 8,192 separate regions, twice what one ioctl returns.
  std::vector<uint32_t> odd;
  for (uint32_t p = 1; p < child->pages(); p += 2) odd.push_back(p);
  ASSERT_TRUE(child->write_pages(odd));
  EXPECT_EQ((*tracker)->collect().value(), odd);
}

TEST(UffdWpTracker, FdThatIsNotAUserfaultfdIsRefused) {
  auto child = WriterChild::start(1 << 20);
  ASSERT_TRUE(child) << child.error().to_string();
  // fd 0 of the child is our stdin, not a uffd: UFFDIO_API must fail, loudly.
  auto tracker = UffdWpTracker::attach(range_of(*child), 0);
  EXPECT_FALSE(tracker);
}

TEST(SoftDirtyTracker, ExactSetWhereTheKernelHasSoftDirty) {
  if (auto st = probe_soft_dirty(); !st)
    GTEST_SKIP() << "kernel without soft-dirty: " << st.error().to_string();
  auto child = WriterChild::start(kBytes);
  ASSERT_TRUE(child) << child.error().to_string();
  auto tracker = SoftDirtyTracker::open(range_of(*child));
  ASSERT_TRUE(tracker) << tracker.error().to_string();
  auto writes = random_pages(1000, child->pages(), 5);
  ASSERT_TRUE(child->write_pages(writes));
  EXPECT_EQ((*tracker)->collect().value(), sorted_unique(writes));
  EXPECT_TRUE((*tracker)->collect().value().empty());
}

}  // namespace
}  // namespace ftd
