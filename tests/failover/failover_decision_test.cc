// The decision table, exhaustively: every combination of a small evidence
// domain is checked against the safety invariants, plus the named rows.
#include "failover/failover_decision.h"

#include <gtest/gtest.h>

#include <set>

namespace ftd {
namespace {
using std::chrono::milliseconds;
using Age = std::optional<milliseconds>;

const milliseconds kTimeout{250};
const std::vector<Age> kAges = {std::nullopt, milliseconds(10), milliseconds(400)};

FailoverEvidence base(Side side, FailoverState state) {
  FailoverEvidence e;
  e.side = side;
  e.state = state;
  e.peer_timeout = kTimeout;
  e.link_heartbeat_age = {milliseconds(1000)};  // heard once, long ago
  e.arbiter_configured = true;
  e.replica_epoch = 7;
  e.arbiter.evidence = "test";
  return e;
}

TEST(FailoverDecision, ExhaustiveInvariants) {
  int cases = 0;
  std::set<Decision> seen;
  for (Side side : {Side::kPrimary, Side::kSecondary}) {
    const auto states = side == Side::kPrimary
                            ? std::vector{FailoverState::kProtected, FailoverState::kDegraded,
                                          FailoverState::kHolding, FailoverState::kFenced}
                            : std::vector{FailoverState::kStandby, FailoverState::kActive};
    for (auto state : states)
      for (const Age& l1 : kAges)
        for (const Age& l2 : kAges)
          for (const Age& ack : kAges)
            for (std::optional<PeerRole> role :
                 {std::optional<PeerRole>{}, std::optional{PeerRole::kPrimary},
                  std::optional{PeerRole::kSecondary}, std::optional{PeerRole::kActive}})
              for (bool configured : {false, true})
                for (bool may : {false, true})
                  for (bool superseded : {false, true})
                    for (FenceOutcome fence : {FenceOutcome::kNotConfigured, FenceOutcome::kNotRun,
                                               FenceOutcome::kSucceeded, FenceOutcome::kFailed})
                      for (uint64_t epoch : {0, 5}) {
                        if (may && (superseded || !configured)) continue;  // impossible verdicts
                        FailoverEvidence e = base(side, state);
                        e.link_heartbeat_age = {l1, l2};
                        e.last_ack_age = ack;
                        e.peer_role = role;
                        e.arbiter_configured = configured;
                        e.arbiter.may_run_alone = may;
                        e.arbiter.superseded = superseded;
                        e.fence = fence;
                        e.replica_epoch = epoch;
                        const DecisionResult r = decide(e);
                        const Decision d = r.decision;
                        seen.insert(d);
                        ++cases;
                        SCOPED_TRACE(::testing::Message()
                                     << "case " << cases << " decision " << to_string(d)
                                     << " state " << to_string(state) << " reason " << r.reason);
                        EXPECT_FALSE(r.reason.empty());
                        const bool alive = peer_alive(e);
                        const bool any_fresh = (l1 && *l1 < kTimeout) || (l2 && *l2 < kTimeout) ||
                                               (ack && *ack < kTimeout);
                        EXPECT_EQ(alive, any_fresh);
                        if (side == Side::kSecondary) {
                          EXPECT_TRUE(d == Decision::kWait || d == Decision::kClaim ||
                                      d == Decision::kFence || d == Decision::kActivate);
                          if (state == FailoverState::kActive) {
                            EXPECT_EQ(d, Decision::kActivate);
                          }
                          if (d == Decision::kClaim || d == Decision::kFence ||
                              (d == Decision::kActivate && state != FailoverState::kActive)) {
                            EXPECT_TRUE(peer_ever_heard(e));
                          }
                          if (d == Decision::kActivate && state != FailoverState::kActive) {
                            // Never activate on doubtful evidence.
                            EXPECT_FALSE(alive);
                            EXPECT_TRUE(configured && may);
                            EXPECT_GT(epoch, 0u);
                            EXPECT_TRUE(fence == FenceOutcome::kNotConfigured ||
                                        fence == FenceOutcome::kSucceeded);
                          }
                          if (d == Decision::kFence) {
                            EXPECT_TRUE(may && fence == FenceOutcome::kNotRun);
                          }
                          if (state == FailoverState::kStandby && alive) {
                            EXPECT_EQ(d, Decision::kWait);
                          }
                          if (d == Decision::kClaim) {
                            EXPECT_TRUE(configured && !may && !superseded);
                          }
                        } else {
                          EXPECT_TRUE(d == Decision::kProtected || d == Decision::kRunDegraded ||
                                      d == Decision::kHold || d == Decision::kFenced);
                          if (state == FailoverState::kFenced) {
                            EXPECT_EQ(d, Decision::kFenced);
                          }
                          if (superseded) {
                            EXPECT_EQ(d, Decision::kFenced);
                          }
                          if (state == FailoverState::kProtected && !peer_ever_heard(e) &&
                              !superseded && role != PeerRole::kActive) {
                            EXPECT_EQ(d, Decision::kProtected);
                          }
                          if (d == Decision::kRunDegraded) {
                            EXPECT_TRUE(configured && may && !superseded);
                            EXPECT_TRUE(!alive || state == FailoverState::kDegraded);
                          }
                          // Without the arbiter a degraded primary must stop releasing.
                          if (state == FailoverState::kDegraded && !may) {
                            EXPECT_TRUE(d == Decision::kHold || d == Decision::kFenced);
                          }
                          if (role == PeerRole::kActive && alive) {
                            EXPECT_EQ(d, Decision::kFenced);
                          }
                          if (alive && !superseded && role != PeerRole::kActive &&
                              (state == FailoverState::kProtected ||
                               state == FailoverState::kHolding)) {
                            EXPECT_EQ(d, Decision::kProtected);
                          }
                          if (!configured && state != FailoverState::kFenced) {
                            EXPECT_NE(d, Decision::kRunDegraded);
                          }
                        }
                      }
  }
  EXPECT_GT(cases, 10000);
  EXPECT_EQ(seen.size(), 8u) << "every decision is reachable";
}

TEST(FailoverDecision, SecondaryRows) {
  auto e = base(Side::kSecondary, FailoverState::kStandby);
  e.link_heartbeat_age = {milliseconds(20)};
  EXPECT_EQ(decide(e).decision, Decision::kWait);
  e.link_heartbeat_age = {milliseconds(300)};
  EXPECT_EQ(decide(e).decision, Decision::kClaim);
  e.last_ack_age = milliseconds(30);  // acks count as life
  EXPECT_EQ(decide(e).decision, Decision::kWait);
  e.last_ack_age.reset();
  e.arbiter.may_run_alone = true;
  EXPECT_EQ(decide(e).decision, Decision::kActivate);
  e.fence = FenceOutcome::kNotRun;
  EXPECT_EQ(decide(e).decision, Decision::kFence);
  e.fence = FenceOutcome::kFailed;
  EXPECT_EQ(decide(e).decision, Decision::kWait);
  e.fence = FenceOutcome::kSucceeded;
  e.replica_epoch = 0;
  auto r = decide(e);
  EXPECT_EQ(r.decision, Decision::kWait);
  EXPECT_NE(r.reason.find("no consistent replica"), std::string::npos);
  e = base(Side::kSecondary, FailoverState::kStandby);
  e.arbiter_configured = false;
  e.arbiter.evidence = "automatic failover off: no arbiter configured";
  r = decide(e);
  EXPECT_EQ(r.decision, Decision::kWait);
  EXPECT_NE(r.reason.find("automatic failover off"), std::string::npos);
}

TEST(FailoverDecision, NothingHappensBeforeFirstContact) {
  auto e = base(Side::kSecondary, FailoverState::kStandby);
  e.link_heartbeat_age = {std::nullopt, std::nullopt};
  e.arbiter.may_run_alone = true;
  EXPECT_EQ(decide(e).decision, Decision::kWait);
  e = base(Side::kPrimary, FailoverState::kProtected);
  e.link_heartbeat_age = {std::nullopt};
  e.arbiter.may_run_alone = true;
  EXPECT_EQ(decide(e).decision, Decision::kProtected);
}

TEST(FailoverDecision, PrimaryRows) {
  auto e = base(Side::kPrimary, FailoverState::kProtected);
  e.last_ack_age = milliseconds(10);
  EXPECT_EQ(decide(e).decision, Decision::kProtected);
  e.last_ack_age = milliseconds(1000);
  EXPECT_EQ(decide(e).decision, Decision::kHold);
  e.arbiter.may_run_alone = true;
  EXPECT_EQ(decide(e).decision, Decision::kRunDegraded);
  e.state = FailoverState::kDegraded;
  e.last_ack_age = milliseconds(10);  // peer back: still degraded while the lease holds
  EXPECT_EQ(decide(e).decision, Decision::kRunDegraded);
  e.arbiter.may_run_alone = false;
  EXPECT_EQ(decide(e).decision, Decision::kHold);
  e.arbiter.superseded = true;
  EXPECT_EQ(decide(e).decision, Decision::kFenced);
  e = base(Side::kPrimary, FailoverState::kHolding);
  e.link_heartbeat_age = {milliseconds(10)};
  e.peer_role = PeerRole::kActive;  // partition healed, the peer took over
  EXPECT_EQ(decide(e).decision, Decision::kFenced);
  e = base(Side::kPrimary, FailoverState::kFenced);
  e.link_heartbeat_age = {milliseconds(10)};
  e.arbiter.may_run_alone = true;
  EXPECT_EQ(decide(e).decision, Decision::kFenced);
}

}  // namespace
}  // namespace ftd
