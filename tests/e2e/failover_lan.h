// The network of the QEMU failover tests: a "lan" namespace where both ftd
// daemons run (their taps join one bridge there, their replication link uses
// its loopback) and a "client" namespace joined to that bridge by a veth.
//   client ns: <veth client end> 10.77.0.10/24
//   lan ns:    bridge <- veth lan end, primary tap, secondary tap (made by ftd)
//   guest:     10.77.0.2/24 (its NIC reaches the bridge through the active ftd)
// Everything is removed on destruction, in reverse order of creation.
#pragma once

#include <string>

#include "common/result.h"
#include "net/netns.h"
#include "tests/e2e/lan_addresses.h"

namespace ftd::testing {

class FailoverLan {
 public:
  static Result<FailoverLan> create();

  const std::string& lan() const { return lan_.name(); }
  const std::string& client() const { return client_.name(); }
  const std::string& bridge() const { return bridge_.name(); }
  // Unique tap names for the two daemons (ftd creates them).
  const std::string& primary_tap() const { return primary_tap_; }
  const std::string& secondary_tap() const { return secondary_tap_; }

 private:
  // Declaration order = creation order; members are destroyed in reverse.
  net::NetNamespace lan_;
  net::NetNamespace client_;
  net::Bridge bridge_;
  net::VethPair veth_;
  std::string primary_tap_, secondary_tap_;
};

}  // namespace ftd::testing
