// The corosync arbiter's rule without a cluster: quorum, membership, settle,
// ring changes and staleness.
#include "failover/quorum_rule.h"

#include <gtest/gtest.h>

namespace ftd {
namespace {

using namespace std::chrono_literals;
using Clock = QuorumSnapshot::Clock;

QuorumRule rule() {
  QuorumRule r;
  r.peer_nodeid = 2;
  r.settle = 3000ms;
  r.stale_after = 500ms;
  return r;
}

QuorumSnapshot alone(Clock::time_point refreshed, uint64_t seq = 8) {
  QuorumSnapshot s;
  s.connected = true;
  s.quorate = true;
  s.local_nodeid = 1;
  s.ring_nodeid = 1;
  s.ring_seq = seq;
  s.members = {1};
  s.total_votes = 2;
  s.expected_votes = 3;
  s.quorum = 2;
  s.qdevice_votes = 1;
  s.qdevice_alive = s.qdevice_cast_vote = true;
  s.refreshed = refreshed;
  return s;
}

TEST(QuorumRule, ConnectedPairNeverRunsAlone) {
  const auto t0 = Clock::now();
  QuorumSnapshot prev, s = alone(t0);
  s.members = {1, 2};
  track_alone(prev, s, 2, t0);
  EXPECT_FALSE(s.alone_since);
  s.refreshed = t0 + 1h;  // fresh, and connected for an hour
  auto v = decide(s, rule(), t0 + 1h);
  EXPECT_FALSE(v.may_run_alone);
  EXPECT_NE(v.evidence.find("pair connected"), std::string::npos) << v.evidence;
  EXPECT_EQ(v.term, 8u);
}

TEST(QuorumRule, RunsAloneOnlyAfterSettle) {
  const auto t0 = Clock::now();
  QuorumSnapshot prev, s = alone(t0);
  track_alone(prev, s, 2, t0);
  ASSERT_TRUE(s.alone_since);
  // Later refreshes in the same ring keep the original start.
  QuorumSnapshot later = alone(t0 + 2999ms);
  track_alone(s, later, 2, t0 + 2999ms);
  EXPECT_EQ(*later.alone_since, t0);
  auto early = decide(later, rule(), t0 + 2999ms);
  EXPECT_FALSE(early.may_run_alone);
  EXPECT_NE(early.evidence.find("< settle 3000 ms"), std::string::npos) << early.evidence;
  QuorumSnapshot settled = alone(t0 + 3000ms);
  track_alone(later, settled, 2, t0 + 3000ms);
  auto v = decide(settled, rule(), t0 + 3000ms);
  EXPECT_TRUE(v.may_run_alone) << v.evidence;
  EXPECT_NE(v.evidence.find("votes=2/3"), std::string::npos) << v.evidence;
  EXPECT_NE(v.evidence.find("members=[1]"), std::string::npos) << v.evidence;
  EXPECT_NE(v.evidence.find("ring=1.8"), std::string::npos) << v.evidence;
}

TEST(QuorumRule, RingChangeRestartsSettle) {
  const auto t0 = Clock::now();
  QuorumSnapshot prev, s = alone(t0, 8);
  track_alone(prev, s, 2, t0);
  QuorumSnapshot next = alone(t0 + 5s, 9);
  track_alone(s, next, 2, t0 + 5s);
  EXPECT_EQ(*next.alone_since, t0 + 5s);
  EXPECT_FALSE(decide(next, rule(), t0 + 5s).may_run_alone);
}

TEST(QuorumRule, LosingQuorumRevokesAtOnce) {
  const auto t0 = Clock::now();
  QuorumSnapshot prev, s = alone(t0);
  track_alone(prev, s, 2, t0);
  QuorumSnapshot granted = alone(t0 + 4s);
  track_alone(s, granted, 2, t0 + 4s);
  ASSERT_TRUE(decide(granted, rule(), t0 + 4s).may_run_alone);
  QuorumSnapshot lost = alone(t0 + 4100ms);
  lost.quorate = false;
  lost.total_votes = 1;
  track_alone(granted, lost, 2, t0 + 4100ms);
  EXPECT_FALSE(lost.alone_since);
  auto v = decide(lost, rule(), t0 + 4100ms);
  EXPECT_FALSE(v.may_run_alone);
  EXPECT_NE(v.evidence.find("not quorate"), std::string::npos) << v.evidence;
  // Regaining quorum starts a fresh settle period.
  QuorumSnapshot back = alone(t0 + 4200ms);
  track_alone(lost, back, 2, t0 + 4200ms);
  EXPECT_EQ(*back.alone_since, t0 + 4200ms);
}

TEST(QuorumRule, StaleSnapshotIsDoubt) {
  const auto t0 = Clock::now();
  QuorumSnapshot prev, s = alone(t0);
  track_alone(prev, s, 2, t0);
  // Settled, but corosync has not answered for 501 ms: refuse.
  s.refreshed = t0 + 10s - 501ms;
  auto v = decide(s, rule(), t0 + 10s);
  EXPECT_FALSE(v.may_run_alone);
  EXPECT_NE(v.evidence.find("stale"), std::string::npos) << v.evidence;
}

TEST(QuorumRule, DisconnectedOrSelfMissingRefuses) {
  const auto t0 = Clock::now();
  QuorumSnapshot down;
  down.error = "quorum_dispatch: CS_ERR_LIBRARY";
  auto v = decide(down, rule(), t0);
  EXPECT_FALSE(v.may_run_alone);
  EXPECT_NE(v.evidence.find("CS_ERR_LIBRARY"), std::string::npos) << v.evidence;
  QuorumSnapshot prev, odd = alone(t0);
  odd.members = {3};
  track_alone(prev, odd, 2, t0);
  EXPECT_FALSE(odd.alone_since);
  EXPECT_FALSE(decide(odd, rule(), t0 + 1h).may_run_alone);
}

}  // namespace
}  // namespace ftd
