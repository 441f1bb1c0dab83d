// The run-time choice: uffd-wp where the kernel has it, graceful fallback
// where it does not (simulated through the KernelProbes seam), errors when
// an explicit choice cannot be had.
#include <gtest/gtest.h>
#include <sys/utsname.h>

#include <cstdio>

#include "tests/tracking/writer_child.h"
#include "tracking/tracker_probe.h"

namespace ftd {
namespace {

using testing::WriterChild;

bool kernel_at_least(int major, int minor) {
  utsname u{};
  ::uname(&u);
  int ma = 0, mi = 0;
  std::sscanf(u.release, "%d.%d", &ma, &mi);
  return ma > major || (ma == major && mi >= minor);
}

KernelProbes kernel_without_either() {
  return {
      .uffd_wp =
          [] { return Status(make_error(ErrorCode::kUnimplemented, "simulated: no WP_ASYNC")); },
      .soft_dirty =
          [] { return Status(make_error(ErrorCode::kUnimplemented, "simulated: no bit 55")); }};
}

class TrackerProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto child = WriterChild::start(4 << 20);
    ASSERT_TRUE(child) << child.error().to_string();
    child_.emplace(std::move(*child));
    target_.range = {.pid = child_->pid(), .start = child_->address(), .length = child_->bytes()};
    target_.uffd_in_target = WriterChild::kUffdFd;
    target_.memory = child_->parent_view();
  }
  std::optional<WriterChild> child_;
  TrackerTarget target_;
};

TEST_F(TrackerProbeTest, RealProbeFindsUffdWpOnKernelsThatHaveIt) {
  auto st = probe_uffd_wp();
  if (kernel_at_least(6, 7)) {
    EXPECT_TRUE(st) << st.error().to_string();
  }
  if (!st) GTEST_SKIP() << "kernel lacks async uffd-wp: " << st.error().to_string();
  auto choice = choose_tracker({}, target_);
  ASSERT_TRUE(choice) << choice.error().to_string();
  EXPECT_EQ(choice->kind, TrackerKind::kUffdWp);
  EXPECT_EQ(choice->tracker->name(), "uffd-wp");
  // And it tracks: the chosen tracker sees the child's writes.
  ASSERT_TRUE(child_->write_pages(std::vector<uint32_t>{3, 9}));
  EXPECT_EQ(choice->tracker->collect().value(), (std::vector<uint32_t>{3, 9}));
}

TEST_F(TrackerProbeTest, KernelWithoutEitherFallsBackToAWorkingScan) {
  auto choice = choose_tracker({}, target_, kernel_without_either());
  ASSERT_TRUE(choice) << choice.error().to_string();
  EXPECT_EQ(choice->kind, TrackerKind::kScan);
  EXPECT_NE(choice->reason.find("simulated: no WP_ASYNC"), std::string::npos) << choice->reason;
  EXPECT_NE(choice->reason.find("simulated: no bit 55"), std::string::npos) << choice->reason;
  // The scan reports everything first, then content changes only.
  EXPECT_EQ(choice->tracker->collect().value().size(), child_->pages());
  ASSERT_TRUE(child_->write_pages(std::vector<uint32_t>{7}));
  EXPECT_EQ(choice->tracker->collect().value(), std::vector<uint32_t>{7});
}

TEST_F(TrackerProbeTest, ExplicitUffdWpOnAKernelWithoutItIsAnError) {
  auto choice = choose_tracker({.kind = TrackerKind::kUffdWp}, target_, kernel_without_either());
  ASSERT_FALSE(choice);
  EXPECT_NE(choice.error().message.find("simulated: no WP_ASYNC"), std::string::npos);
}

TEST_F(TrackerProbeTest, TargetWithoutAUffdIsNotTrackedWithUffdWp) {
  target_.uffd_in_target.reset();
  KernelProbes probes;
  probes.soft_dirty = kernel_without_either().soft_dirty;
  auto choice = choose_tracker({}, target_, probes);
  ASSERT_TRUE(choice) << choice.error().to_string();
  EXPECT_EQ(choice->kind, TrackerKind::kScan);
  EXPECT_NE(choice->reason.find("holds no userfaultfd"), std::string::npos) << choice->reason;
}

TEST_F(TrackerProbeTest, RefusedConfigurationScansUnderAutoAndFailsWhenExplicit) {
  target_.risks = check_qemu_argv({"-device", "virtio-balloon-pci"});
  auto choice = choose_tracker({}, target_);
  ASSERT_TRUE(choice) << choice.error().to_string();
  EXPECT_EQ(choice->kind, TrackerKind::kScan);
  EXPECT_NE(choice->reason.find("balloon"), std::string::npos) << choice->reason;
  EXPECT_FALSE(choose_tracker({.kind = TrackerKind::kUffdWp}, target_));
}

TEST(TrackerKind, ParsesTheFlagValues) {
  EXPECT_EQ(parse_tracker_kind("uffd-wp").value(), TrackerKind::kUffdWp);
  EXPECT_EQ(parse_tracker_kind("soft-dirty").value(), TrackerKind::kSoftDirty);
  EXPECT_EQ(parse_tracker_kind("scan").value(), TrackerKind::kScan);
  EXPECT_EQ(parse_tracker_kind("auto").value(), TrackerKind::kAuto);
  EXPECT_FALSE(parse_tracker_kind("kvm"));
}

}  // namespace
}  // namespace ftd
