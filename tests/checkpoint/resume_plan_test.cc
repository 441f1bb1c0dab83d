// The reconnect decision as a pure function: every case without threads.
#include "checkpoint/resume_plan.h"

#include <gtest/gtest.h>

#include <vector>

namespace ftd {
namespace {

using Kind = ResumePlan::Kind;

ResumePlan plan(bool synced, uint64_t replica, uint64_t captured, std::vector<uint64_t> kept,
                bool acked_since_sync = true) {
  return plan_resume({.synced = synced,
                      .acked_since_sync = acked_since_sync,
                      .replica_epoch = replica,
                      .captured_epoch = captured,
                      .retained_epochs = kept});
}

TEST(ResumePlan, FirstConnectionSyncsFully) {
  EXPECT_EQ(plan(false, 0, 0, {}).kind, Kind::kFullSync);
  EXPECT_EQ(plan(false, 12, 12, {}).kind, Kind::kFullSync) << "a replica from before our sync";
}

TEST(ResumePlan, ReplicaAtOurEpochIsInStep) {
  auto p = plan(true, 40, 40, {});
  EXPECT_EQ(p.kind, Kind::kInStep);
  EXPECT_EQ(p.from_epoch, 40u);
}

TEST(ResumePlan, ReplicaBehindWithEveryMissedEpochKnownCatchesUp) {
  auto p = plan(true, 37, 40, {38, 39, 40});
  EXPECT_EQ(p.kind, Kind::kCatchUp);
  EXPECT_EQ(p.from_epoch, 37u);
  EXPECT_EQ(plan(true, 37, 40, {36, 37, 38, 39, 40, 41}).kind, Kind::kCatchUp);
}

TEST(ResumePlan, AnyMissingEpochForcesFullSync) {
  EXPECT_EQ(plan(true, 37, 40, {38, 40}).kind, Kind::kFullSync);
  EXPECT_EQ(plan(true, 37, 40, {39, 40}).kind, Kind::kFullSync);
  EXPECT_EQ(plan(true, 37, 40, {38, 39}).kind, Kind::kFullSync);
  EXPECT_EQ(plan(true, 37, 40, {}).kind, Kind::kFullSync);
}

TEST(ResumePlan, ReplicaAheadOrEmptyForcesFullSync) {
  EXPECT_EQ(plan(true, 41, 40, {}).kind, Kind::kFullSync) << "a restarted primary";
  EXPECT_EQ(plan(true, 0, 40, {}).kind, Kind::kFullSync) << "a wiped replica";
}

// Our sync was queued, maybe partly applied, then the secondary restarted
// and undid it: it reports the epoch it kept, another primary's number that
// may well fall among ours. Only an ack after the sync proves the history.
TEST(ResumePlan, NothingAckedSinceOurSyncForcesFullSync) {
  auto p = plan(true, 38, 40, {38, 39, 40}, false);
  EXPECT_EQ(p.kind, Kind::kFullSync);
  EXPECT_NE(p.reason.find("another primary"), std::string::npos) << p.reason;
  EXPECT_EQ(plan(true, 40, 40, {}, false).kind, Kind::kFullSync);
}

TEST(ResumePlan, ReasonsNameTheCase) {
  EXPECT_NE(plan(true, 37, 40, {38, 40}).reason.find("39"), std::string::npos);
  EXPECT_STREQ(to_string(Kind::kCatchUp), "catch_up");
}

}  // namespace
}  // namespace ftd
