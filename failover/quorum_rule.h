// The corosync arbiter's decision rule, as a pure function of what corosync
// reported and when, so it can be tested without a cluster.
//
// Rule: a side may run alone only when its corosync is quorate with a
// membership that contains itself and not its peer, and has been so, in the
// same ring, for at least `settle`. Why settle: after a partition the losing
// side keeps the qdevice vote (and may believe itself quorate) until its
// qdevice hears the qnetd verdict; `settle` must exceed that window, so two
// sides can never both have been "quorate without the peer" for `settle`.
// See docs/corosync.md for the timing inequality and the measurements.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "failover/arbiter.h"

namespace ftd {

struct QuorumRule {
  uint32_t peer_nodeid = 0;  // the other host of the VM pair (corosync nodeid)
  // How long "quorate without the peer" must hold before running alone.
  std::chrono::milliseconds settle{2000};
  // A snapshot older than this is doubt: corosync (or our thread) stalled.
  std::chrono::milliseconds stale_after{500};
};

// What corosync told us, plus when. Filled by the arbiter's thread.
struct QuorumSnapshot {
  using Clock = std::chrono::steady_clock;
  bool connected = false;  // IPC to corosync works
  std::string error;       // why not connected
  bool quorate = false;
  uint32_t local_nodeid = 0;
  uint32_t ring_nodeid = 0;
  uint64_t ring_seq = 0;
  std::vector<uint32_t> members;
  uint32_t total_votes = 0;
  uint32_t expected_votes = 0;
  uint32_t quorum = 0;
  uint32_t qdevice_votes = 0;
  bool qdevice_alive = false;
  bool qdevice_cast_vote = false;
  Clock::time_point refreshed{};                 // last successful answer from corosync
  std::optional<Clock::time_point> alone_since;  // quorate without peer, this ring
};

// True when the snapshot shows quorum, self, and no peer.
bool quorate_alone(const QuorumSnapshot& s, uint32_t peer_nodeid);

// Sets next.alone_since from prev: kept while the same ring stays quorate
// without the peer, started at `now` on entering that state (or a new ring),
// cleared otherwise.
void track_alone(const QuorumSnapshot& prev, QuorumSnapshot& next, uint32_t peer_nodeid,
                 QuorumSnapshot::Clock::time_point now);

ArbiterVerdict decide(const QuorumSnapshot& s, const QuorumRule& rule,
                      QuorumSnapshot::Clock::time_point now);

// "ring=1.a quorate=yes votes=2/3 quorum=2 members=[1] qdevice=alive,vote"
std::string describe(const QuorumSnapshot& s);

}  // namespace ftd
