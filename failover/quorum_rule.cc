#include "failover/quorum_rule.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace ftd {
namespace {

bool has(const std::vector<uint32_t>& v, uint32_t id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

long long ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

bool quorate_alone(const QuorumSnapshot& s, uint32_t peer_nodeid) {
  return s.connected && s.quorate && s.local_nodeid != 0 && has(s.members, s.local_nodeid) &&
         !has(s.members, peer_nodeid);
}

void track_alone(const QuorumSnapshot& prev, QuorumSnapshot& next, uint32_t peer_nodeid,
                 QuorumSnapshot::Clock::time_point now) {
  if (!quorate_alone(next, peer_nodeid)) {
    next.alone_since.reset();
    return;
  }
  const bool same_ring = prev.ring_nodeid == next.ring_nodeid && prev.ring_seq == next.ring_seq;
  // Any ring change restarts the clock: a new membership is new evidence.
  next.alone_since = (same_ring && prev.alone_since) ? prev.alone_since : std::optional(now);
}

std::string describe(const QuorumSnapshot& s) {
  if (!s.connected) return fmt::format("corosync unreachable: {}", s.error);
  std::string qdev = s.qdevice_votes == 0 ? "none"
                                          : fmt::format("{}{}", s.qdevice_alive ? "alive" : "dead",
                                                        s.qdevice_cast_vote ? ",vote" : ",novote");
  return fmt::format(
      "node={} ring={:x}.{:x} quorate={} votes={}/{} quorum={} members=[{}] qdevice={}",
      s.local_nodeid, s.ring_nodeid, s.ring_seq, s.quorate ? "yes" : "no", s.total_votes,
      s.expected_votes, s.quorum, fmt::join(s.members, ","), qdev);
}

ArbiterVerdict decide(const QuorumSnapshot& s, const QuorumRule& rule,
                      QuorumSnapshot::Clock::time_point now) {
  ArbiterVerdict v;
  v.term = s.ring_seq;
  const std::string what = describe(s);
  auto refuse = [&](std::string why) {
    v.evidence = fmt::format("corosync: {}; {}", why, what);
    return v;
  };
  if (!s.connected) return refuse("no quorum information");
  if (now - s.refreshed > rule.stale_after) {
    return refuse(fmt::format("quorum state stale ({} ms old > {} ms)", ms(now - s.refreshed),
                              rule.stale_after.count()));
  }
  if (!s.quorate) return refuse("not quorate");
  if (!has(s.members, s.local_nodeid)) return refuse("local node not in membership");
  if (has(s.members, rule.peer_nodeid)) {
    return refuse(fmt::format("peer node {} is a member: pair connected", rule.peer_nodeid));
  }
  if (!s.alone_since) return refuse("not yet tracked without peer");
  const auto alone_for = now - *s.alone_since;
  if (alone_for < rule.settle) {
    return refuse(fmt::format("quorate without peer {} for {} ms < settle {} ms", rule.peer_nodeid,
                              ms(alone_for), rule.settle.count()));
  }
  v.may_run_alone = true;
  // The quorum itself is the record: the peer cannot become quorate while we
  // are (two nodes + qdevice). Nothing persists it past our own loss, though
  // (a double fault can hand the peer its stale replica; docs/failover.md).
  v.alone_recorded = true;
  v.evidence = fmt::format("corosync: quorate without peer {} for {} ms >= settle {} ms; {}",
                           rule.peer_nodeid, ms(alone_for), rule.settle.count(), what);
  return v;
}

}  // namespace ftd
