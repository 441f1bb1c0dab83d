// decide_epoch(): every branch of both policies, plus the option checks.
#include "checkpoint/epoch_policy.h"

#include <gtest/gtest.h>

namespace ftd {
namespace {

using namespace std::chrono_literals;

const EpochPolicy kOutputDriven{.kind = EpochPolicyKind::kOutputDriven, .min = 5ms, .max = 40ms};

EpochSignals signals(std::chrono::microseconds since_last, uint64_t output, bool acked) {
  return {.since_last = since_last,
          .output_waiting = output,
          .oldest_output_age = output ? 1ms : 0ms,
          .previous_acked = acked};
}

TEST(EpochPolicy, FixedWaitsForTheIntervalWhateverTheOutput) {
  const EpochPolicy fixed = EpochPolicy::fixed(40ms);
  EpochDecision d = decide_epoch(fixed, signals(10ms, 3, true));
  EXPECT_EQ(d.trigger, CheckpointTrigger::kNone);
  EXPECT_EQ(d.wait, 30ms);
  d = decide_epoch(fixed, signals(40ms, 0, false));
  EXPECT_EQ(d.trigger, CheckpointTrigger::kTimer);
}

TEST(EpochPolicy, NoOutputMeansTimerOnly) {
  EpochDecision d = decide_epoch(kOutputDriven, signals(10ms, 0, true));
  EXPECT_EQ(d.trigger, CheckpointTrigger::kNone);
  EXPECT_EQ(d.wait, 30ms);  // no extra checkpoints: the next one is the max interval's
  d = decide_epoch(kOutputDriven, signals(40ms, 0, true));
  EXPECT_EQ(d.trigger, CheckpointTrigger::kTimer);
}

TEST(EpochPolicy, OutputAckedAndMinElapsedCheckpointsNow) {
  const EpochDecision d = decide_epoch(kOutputDriven, signals(6ms, 1, true));
  EXPECT_EQ(d.trigger, CheckpointTrigger::kOutput);
  EXPECT_EQ(d.wait, 0us);
}

TEST(EpochPolicy, OutputBeforeMinWaitsForMin) {
  const EpochDecision d = decide_epoch(kOutputDriven, signals(2ms, 1, true));
  EXPECT_EQ(d.trigger, CheckpointTrigger::kNone);
  EXPECT_EQ(d.wait, 3ms);
}

TEST(EpochPolicy, OutputButUnackedWaitsForTheAck) {
  const EpochDecision d = decide_epoch(kOutputDriven, signals(20ms, 5, false));
  EXPECT_EQ(d.trigger, CheckpointTrigger::kNone);
  EXPECT_EQ(d.wait, 20ms);  // the ack wakes the loop sooner; else the max interval fires
  EXPECT_STREQ(d.reason, "output waits for the ack");
}

TEST(EpochPolicy, MaxIntervalFiresEvenWithoutTheAck) {
  const EpochDecision d = decide_epoch(kOutputDriven, signals(41ms, 5, false));
  EXPECT_EQ(d.trigger, CheckpointTrigger::kTimer);
}

TEST(EpochPolicy, NamesAndChecks) {
  EXPECT_EQ(parse_epoch_policy("output-driven"), EpochPolicyKind::kOutputDriven);
  EXPECT_EQ(parse_epoch_policy("fixed"), EpochPolicyKind::kFixed);
  EXPECT_FALSE(parse_epoch_policy("adaptive").has_value());
  EXPECT_EQ(kOutputDriven.describe(), "output-driven 5..40 ms");
  EXPECT_EQ(EpochPolicy::fixed(50ms).describe(), "fixed 50 ms");
  EXPECT_TRUE(check_epoch_policy(kOutputDriven).has_value());
  auto inverted =
      check_epoch_policy({.kind = EpochPolicyKind::kOutputDriven, .min = 50ms, .max = 10ms});
  ASSERT_FALSE(inverted.has_value());
  EXPECT_NE(inverted.error().message.find("below epoch min"), std::string::npos);
  EXPECT_FALSE(check_epoch_policy({.kind = EpochPolicyKind::kOutputDriven, .min = 0ms, .max = 10ms})
                   .has_value());
}

}  // namespace
}  // namespace ftd
