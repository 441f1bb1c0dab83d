// False-failover soak: one healthy ProtectedPair with default heartbeat
// settings under load (a faster record stream plus a busy loop per core in
// the root namespace) for a while; nothing fails, so any failover decision
// other than wait/protected, or any "peer lost", is a false positive.
#pragma once

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace ftd::bench {

Result<nlohmann::json> run_soak(const std::string& arbiter, double minutes, double record_rate);

}  // namespace ftd::bench
