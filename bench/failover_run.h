// One host-kill run of the failover bench: a fresh ProtectedPair with the
// record stream and ping running from the client namespace, the primary host
// powered off, and the moments the secondary detected the loss, was granted
// the right to run by its arbiter and became active, plus what the client saw.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace ftd::bench {

struct HostKillOptions {
  std::string arbiter = "witness";  // witness | corosync
  int index = 0;                    // the run's number, for the JSON
  int qdevice_timeout_ms = 0;       // > 0: corosync's quorum.device.timeout
  // Non-empty: when the run does not end well (an error, no activation, a
  // record verdict that is not ok) the pair's logs are copied here first.
  std::string keep_logs_dir;
};

// Every number is in ms; -1 when a step was not seen. Keys: see bench/README.md.
// `ok` = activated, the record stream resumed and its verdict is ok.
Result<nlohmann::json> run_host_kill(const HostKillOptions& options);

}  // namespace ftd::bench
