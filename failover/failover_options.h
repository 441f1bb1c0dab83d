// The daemon's failover flags and the one call that builds heartbeat +
// arbiter + FailoverMonitor from them, so `daemon/` only parses and wires.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/result.h"
#include "failover/failover_monitor.h"

namespace ftd {

struct FailoverOptions {
  std::string arbiter = "none";              // none | witness | corosync
  std::vector<std::string> heartbeat_links;  // "local_ip:port=peer_ip:port", one per link
  std::string heartbeat_key_file;            // hex key shared by the pair
  int heartbeat_interval_ms = 50;
  int heartbeat_misses = 5;
  int heartbeat_rt_priority = 10;  // 0: normal scheduling
  std::string witness_address;     // host:port of ftd-witness
  std::string witness_holder;      // this side's name there, e.g. web1/hostA
  std::string witness_key_file;    // this holder's hex key
  int witness_renew_ms = 250;
  int witness_rpc_timeout_ms = 200;
  uint32_t corosync_peer_nodeid = 0;  // the peer host's corosync nodeid
  int corosync_settle_ms = 2000;      // quorate without the peer this long first
  std::string fence_command;          // program and arguments, space separated
  int fence_timeout_ms = 10000;
  std::string fence_peer;  // peer's name passed to the fence command
  std::string fence_peer_address;

  void add_to(CLI::App& app);
};

struct FailoverParts {
  std::unique_ptr<HeartbeatMonitor> heartbeat;
  std::unique_ptr<Arbiter> arbiter;
  std::unique_ptr<FailoverMonitor> monitor;  // declared last: destroyed first
};

// Nothing is started when `options.heartbeat_links` is empty (failover
// detection off): returns empty parts.
Result<FailoverParts> build_failover(const FailoverOptions& options, Side side,
                                     const std::string& vm, FailoverCallbacks callbacks);

}  // namespace ftd
