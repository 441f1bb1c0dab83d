#include "failover/failover_options.h"

#include <sstream>

#include "failover/corosync_arbiter.h"
#include "failover/no_arbiter.h"
#include "failover/witness_arbiter.h"

namespace ftd {
using std::chrono::milliseconds;

void FailoverOptions::add_to(CLI::App& app) {
  app.add_option("--arbiter", arbiter, "who may run alone: none | witness | corosync")
      ->check(CLI::IsMember({"none", "witness", "corosync"}));
  app.add_option("--heartbeat-link", heartbeat_links,
                 "local_ip:port=peer_ip:port UDP heartbeat link (repeatable)");
  app.add_option("--heartbeat-key", heartbeat_key_file, "hex key file shared with the peer");
  app.add_option("--heartbeat-interval-ms", heartbeat_interval_ms);
  app.add_option("--heartbeat-misses", heartbeat_misses);
  app.add_option("--heartbeat-rt-priority", heartbeat_rt_priority, "SCHED_RR priority, 0: off");
  app.add_option("--witness", witness_address, "ftd-witness host:port");
  app.add_option("--witness-holder", witness_holder, "this side's holder name on the witness");
  app.add_option("--witness-key", witness_key_file, "hex key file of this holder");
  app.add_option("--witness-renew-ms", witness_renew_ms);
  app.add_option("--witness-timeout-ms", witness_rpc_timeout_ms);
  app.add_option("--corosync-peer-nodeid", corosync_peer_nodeid,
                 "corosync nodeid of the peer host (arbiter corosync)");
  app.add_option("--corosync-settle-ms", corosync_settle_ms,
                 "how long quorate-without-peer must hold before running alone");
  app.add_option("--fence-command", fence_command, "run before activation; must exit 0");
  app.add_option("--fence-timeout-ms", fence_timeout_ms);
  app.add_option("--fence-peer", fence_peer, "peer name given to the fence command");
  app.add_option("--fence-peer-address", fence_peer_address);
}

Result<FailoverParts> build_failover(const FailoverOptions& o, Side side, const std::string& vm,
                                     FailoverCallbacks callbacks) {
  FailoverParts parts;
  if (o.heartbeat_links.empty()) return parts;
  HeartbeatConfig hb{.vm = vm,
                     .interval = milliseconds(o.heartbeat_interval_ms),
                     .miss_count = o.heartbeat_misses,
                     .realtime_priority = o.heartbeat_rt_priority};
  for (const auto& l : o.heartbeat_links) {
    const auto eq = l.find('=');
    if (eq == std::string::npos)
      return make_error(ErrorCode::kInvalidArgument, "--heartbeat-link '{}': want local=peer", l);
    hb.links.push_back({l.substr(0, eq), l.substr(eq + 1)});
  }
  FTD_ASSIGN_OR_RETURN(hb.key, load_key_file(o.heartbeat_key_file));
  const PeerRole role = side == Side::kPrimary ? PeerRole::kPrimary : PeerRole::kSecondary;
  FTD_ASSIGN_OR_RETURN(parts.heartbeat, HeartbeatMonitor::start(std::move(hb), role, 0));

  if (o.arbiter == "witness") {
    FTD_ASSIGN_OR_RETURN(Key key, load_key_file(o.witness_key_file));
    FTD_ASSIGN_OR_RETURN(parts.arbiter, WitnessArbiter::create(
                                            {.address = o.witness_address,
                                             .vm = vm,
                                             .holder = o.witness_holder,
                                             .key = std::move(key),
                                             .renew_interval = milliseconds(o.witness_renew_ms),
                                             .rpc_timeout = milliseconds(o.witness_rpc_timeout_ms),
                                             .hold_from_start = side == Side::kPrimary}));
  } else if (o.arbiter == "corosync") {
    CorosyncArbiterOptions co;
    co.rule.peer_nodeid = o.corosync_peer_nodeid;
    co.rule.settle = milliseconds(o.corosync_settle_ms);
    FTD_ASSIGN_OR_RETURN(parts.arbiter, CorosyncArbiter::create(co));
  } else if (o.arbiter == "none") {
    parts.arbiter = std::make_unique<NoArbiter>();
  } else {
    return make_error(ErrorCode::kInvalidArgument, "--arbiter {}: unknown", o.arbiter);
  }

  FailoverMonitorConfig mc{.side = side, .vm = vm};
  if (!o.fence_command.empty()) {
    std::vector<std::string> argv;
    std::istringstream words(o.fence_command);
    for (std::string w; words >> w;) argv.push_back(w);
    mc.fence.emplace(std::move(argv), milliseconds(o.fence_timeout_ms));
    mc.fence_target = {.vm = vm, .peer = o.fence_peer, .peer_address = o.fence_peer_address};
  }
  parts.monitor = std::make_unique<FailoverMonitor>(std::move(mc), *parts.heartbeat, *parts.arbiter,
                                                    std::move(callbacks));
  return parts;
}

}  // namespace ftd
