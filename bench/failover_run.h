// One host-kill run of the failover bench: a fresh ProtectedPair with the
// record stream and ping running from the client namespace, the primary host
// powered off, and the moments the secondary detected the loss, was granted
// the right to run by its arbiter and became active, plus what the client saw.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace ftd::bench {

// Every number is in ms; -1 when a step was not seen. Keys: see bench/README.md.
// `qdevice_timeout_ms` > 0 sets corosync's quorum.device.timeout.
Result<nlohmann::json> run_host_kill(const std::string& arbiter, int index,
                                     int qdevice_timeout_ms = 0);

}  // namespace ftd::bench
