// The end of a protected pair's life as the VM-definition e2e tests check it:
// the guest answers pings, the primary host (ftd + QEMU) is SIGKILLed, `ftctl
// failover` activates the standby, and the guest answers pings from there.
#pragma once

#include "ftd.pb.h"
#include "tests/e2e/protected_pair.h"

namespace ftd::testing {

struct ManualFailover {
  v1::FailoverReply reply;
  size_t pings_after = 0;  // replies from the activated standby
};

// Fails with the pair's logs when a step does not happen in time.
Result<ManualFailover> ping_kill_primary_host_fail_over(ProtectedPair& pair);

}  // namespace ftd::testing
