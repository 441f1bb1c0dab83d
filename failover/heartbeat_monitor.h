// UDP heartbeats between the two daemons of one VM, on one or more links.
// Each tick sends one authenticated packet per link; a received packet counts
// as life only if it is well formed, carries the pair's MAC, is not a replay
// (per-generation sliding window), is not from a retired generation, and
// echoes a sequence we sent within the detection timeout (proof of
// freshness). Acks of the replication stream count as life too.
//
// Thread contract: all public methods are thread-safe; the monitor owns one
// Boost.Asio thread, started by `start` and joined by the destructor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "failover/heartbeat_packet.h"
#include "failover/hmac.h"

namespace ftd {

struct HeartbeatLink {
  std::string local;  // "ip:port" to bind
  std::string peer;   // "ip:port" to send to / accept from
};

struct HeartbeatConfig {
  std::string vm;
  Key key;  // per-pair key, shared by the two daemons of this VM only
  std::vector<HeartbeatLink> links;
  // Defaults: 50 ms × 5 = 250 ms detection; see docs/failover.md for the
  // false-positive measurement behind them.
  std::chrono::milliseconds interval{50};
  int miss_count = 5;
  // SCHED_RR priority for the heartbeat thread (0: normal scheduling). Under
  // CPU load a normal-priority thread was measured stalling > 400 ms (false
  // failovers); corosync runs its totem thread real-time for the same reason.
  // If the process may not use it, the monitor logs that and carries on.
  int realtime_priority = 10;
  std::chrono::milliseconds timeout() const { return interval * miss_count; }
};

struct HeartbeatCounters {
  uint64_t sent = 0;
  uint64_t accepted = 0;    // counted as life
  uint64_t malformed = 0;   // truncated, bad magic/version/length/fields
  uint64_t bad_mac = 0;     // wrong key or tampered
  uint64_t replayed = 0;    // sequence already seen or older than the window
  uint64_t stale = 0;       // retired generation, or an echo too old to prove freshness
  uint64_t wrong_peer = 0;  // other VM, same side as us, our own packet reflected, wrong source
};

struct HeartbeatLinkState {
  std::string local, peer;
  std::optional<std::chrono::milliseconds> age;  // since the last valid packet on this link
  bool up = false;
};

struct HeartbeatSnapshot {
  std::optional<std::chrono::milliseconds> heartbeat_age;  // newest valid packet, any link
  std::optional<std::chrono::milliseconds> ack_age;        // newest note_peer_ack
  std::optional<PeerRole> peer_role;
  uint64_t peer_epoch = 0;
  uint64_t peer_boot_id = 0;
  uint64_t last_acked_epoch = 0;
  bool peer_alive = false;  // heartbeat or ack younger than the timeout
  std::vector<HeartbeatLinkState> links;
  HeartbeatCounters counters;
};

class HeartbeatMonitor {
 public:
  static Result<std::unique_ptr<HeartbeatMonitor>> start(HeartbeatConfig config, PeerRole role,
                                                         uint64_t epoch);
  ~HeartbeatMonitor();
  HeartbeatMonitor(const HeartbeatMonitor&) = delete;
  HeartbeatMonitor& operator=(const HeartbeatMonitor&) = delete;

  // What we announce from the next packet on (role: FailoverMonitor; epoch:
  // the replication code, as it ships / applies checkpoints).
  void set_role(PeerRole role);
  void set_epoch(uint64_t epoch);
  // The replication stream delivered an ack: the peer is alive.
  void note_peer_ack(uint64_t epoch);
  HeartbeatSnapshot snapshot() const;
  // Blocks until `peer_alive == alive` or the timeout; returns the final value match.
  bool wait_peer_alive(bool alive, std::chrono::milliseconds timeout) const;
  const HeartbeatConfig& config() const;

  class Impl;

 private:
  explicit HeartbeatMonitor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ftd
