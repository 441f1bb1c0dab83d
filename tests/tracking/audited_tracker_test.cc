// The auditor: silent when the tracker is right, loud (and a full epoch)
// when a write bypassed the tracked page tables.
#include <gtest/gtest.h>

#include "tests/tracking/writer_child.h"
#include "tracking/audited_tracker.h"
#include "tracking/kernel_probes.h"
#include "tracking/uffd_wp_tracker.h"

namespace ftd {
namespace {

using testing::WriterChild;

class AuditedTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto st = probe_uffd_wp(); !st) GTEST_SKIP() << st.error().to_string();
    auto child = WriterChild::start(16 << 20);
    ASSERT_TRUE(child) << child.error().to_string();
    child_.emplace(std::move(*child));
    auto inner = UffdWpTracker::attach({.pid = child_->pid(),
                                        .start = child_->address(),
                                        .length = child_->bytes(),
                                        .page_size = 4096},
                                       WriterChild::kUffdFd);
    ASSERT_TRUE(inner) << inner.error().to_string();
    tracker_.emplace(std::move(*inner), child_->parent_view(), 4096,
                     AuditOptions{.every_epochs = 2});
  }
  std::optional<WriterChild> child_;
  std::optional<AuditedTracker> tracker_;
};

TEST_F(AuditedTrackerTest, CorrectTrackerPassesEveryAudit) {
  for (uint32_t epoch = 1; epoch <= 8; ++epoch) {
    std::vector<uint32_t> writes = {epoch, epoch * 100, 4000};
    ASSERT_TRUE(child_->write_pages(writes));
    auto got = tracker_->collect();
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, writes) << "epoch " << epoch;
  }
  const auto c = tracker_->counters();
  EXPECT_EQ(c.audits, 3u);  // baselines at epochs 2, 4, 6; audits at 3, 5, 7
  EXPECT_EQ(c.audit_misses, 0u);
  EXPECT_EQ(c.full_epochs, 0u);
}

TEST_F(AuditedTrackerTest, WriteThroughAnotherMappingIsCaughtAndForcesAFullEpoch) {
  ASSERT_TRUE(tracker_->collect());  // epoch 1
  ASSERT_TRUE(tracker_->collect());  // epoch 2: audit baseline
  // Epoch 3: the child writes two pages; we write one more through our own
  // mapping, which the child's page tables never see (vhost-user's case).
  ASSERT_TRUE(child_->write_pages(std::vector<uint32_t>{10, 20}));
  child_->parent_view()[777 * 4096 + 5] = std::byte{0x5a};
  auto got = tracker_->collect();
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(got->size(), child_->pages()) << "a miss must make the epoch report every page";
  const auto c = tracker_->counters();
  EXPECT_EQ(c.audits, 1u);
  EXPECT_EQ(c.audit_misses, 1u);
  EXPECT_EQ(c.missed_pages, 1u);
  EXPECT_EQ(c.full_epochs, 1u);
  // Next epochs are back to the tracker's own sets.
  ASSERT_TRUE(child_->write_pages(std::vector<uint32_t>{30}));
  EXPECT_EQ(tracker_->collect().value(), std::vector<uint32_t>{30});
}

TEST_F(AuditedTrackerTest, MissOutsideAnAuditedEpochIsNotClaimedAsCaught) {
  // Documents the auditor's reach: it checks the audited epochs only.
  child_->parent_view()[5 * 4096] = std::byte{1};  // epoch 1, not audited
  auto got = tracker_->collect();
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->empty());
  EXPECT_EQ(tracker_->counters().audit_misses, 0u);
}

}  // namespace
}  // namespace ftd
