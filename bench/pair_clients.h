// What a client of a ProtectedPair's guest runs during a bench run, from the
// client namespace: ping (ping -D) and the TCP record stream (50 records/s),
// started together; returns once the guest answered a record.
#pragma once

#include "tests/e2e/client_probes.h"
#include "tests/e2e/protected_pair.h"

namespace ftd::bench {

struct PairClients {
  testing::PingProbe ping;
  testing::RecordStream records;
};

// Logs to the pair's ping.log, record.log and record.json.
Result<PairClients> start_pair_clients(testing::ProtectedPair& pair, double ping_interval_s = 0.05);

}  // namespace ftd::bench
