// The throttle's decision alone (checkpoint/throttle.h): when it engages,
// how far it slows the guest, when it lets go.
#include "checkpoint/throttle.h"

#include <gtest/gtest.h>

namespace ftd {
namespace {

using namespace std::chrono_literals;

ThrottleConfig on(std::chrono::milliseconds max = 100ms) {
  return {.enabled = true, .max_epoch = max, .window = 20ms, .min_duty = 0.1};
}

TEST(ThrottleController, OffNeverEngages) {
  ThrottleController c({});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.on_epoch(10s), ThrottleChange::kNone);
  EXPECT_FALSE(c.active());
  EXPECT_EQ(c.duty(), 1.0);
}

TEST(ThrottleController, EpochsUnderTheBoundLeaveTheGuestAlone) {
  ThrottleController c(on());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.on_epoch(100ms), ThrottleChange::kNone);
  EXPECT_FALSE(c.active());
}

TEST(ThrottleController, LongEpochsLowerTheDutyDownToTheFloor) {
  ThrottleController c(on());
  EXPECT_EQ(c.on_epoch(101ms), ThrottleChange::kStarted);
  EXPECT_NEAR(c.duty(), 0.7, 1e-9);
  double last = c.duty();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(c.on_epoch(500ms), ThrottleChange::kNone);
    EXPECT_LE(c.duty(), last);
    last = c.duty();
  }
  EXPECT_NEAR(c.duty(), 0.1, 1e-9) << "the guest always keeps its minimum duty";
}

TEST(ThrottleController, ShortEpochsRaiseItBackAndStopIt) {
  ThrottleController c(on());
  c.on_epoch(300ms);
  c.on_epoch(300ms);  // 0.49
  // Between half the bound and the bound: hold.
  EXPECT_EQ(c.on_epoch(70ms), ThrottleChange::kNone);
  EXPECT_NEAR(c.duty(), 0.49, 1e-9);
  int steps = 0;
  ThrottleChange last = ThrottleChange::kNone;
  while (c.active() && steps < 20) {
    last = c.on_epoch(40ms);
    ++steps;
  }
  EXPECT_EQ(last, ThrottleChange::kStopped);
  EXPECT_EQ(steps, 6);  // 0.49 -> 1.0 in +0.1 steps
  EXPECT_EQ(c.duty(), 1.0);
}

TEST(ThrottleConfigCheck, RejectsNonsense) {
  EXPECT_TRUE(check_throttle({}));
  EXPECT_TRUE(check_throttle(on()));
  EXPECT_FALSE(check_throttle({.enabled = true, .max_epoch = 0ms}));
  EXPECT_FALSE(check_throttle({.enabled = true, .max_epoch = 10ms, .window = 20ms}));
  EXPECT_FALSE(check_throttle({.enabled = true, .max_epoch = 100ms, .min_duty = 0}));
  EXPECT_FALSE(check_throttle({.enabled = true, .max_epoch = 100ms, .min_duty = 1.5}));
}

}  // namespace
}  // namespace ftd
