#include "tests/e2e/failover_lan.h"

namespace ftd::testing {

Result<FailoverLan> FailoverLan::create() {
  FailoverLan n;
  FTD_ASSIGN_OR_RETURN(n.lan_, net::NetNamespace::create(net::unique_ifname("fel")));
  FTD_ASSIGN_OR_RETURN(n.client_, net::NetNamespace::create(net::unique_ifname("fec")));
  FTD_ASSIGN_OR_RETURN(n.bridge_, net::Bridge::create(n.lan_.name(), net::unique_ifname("febr")));
  FTD_ASSIGN_OR_RETURN(
      n.veth_, net::VethPair::create(n.lan_.name(), net::unique_ifname("fevl"), n.client_.name(),
                                     net::unique_ifname("fevc")));
  FTD_TRY(n.lan_.ip({"link", "set", n.veth_.a(), "master", n.bridge_.name()}));
  FTD_TRY(net::link_up(n.lan_.name(), n.veth_.a()));
  FTD_TRY(net::add_address(n.client_.name(), n.veth_.b(), kClientCidr));
  n.primary_tap_ = net::unique_ifname("fetp");
  n.secondary_tap_ = net::unique_ifname("fets");
  return n;
}

}  // namespace ftd::testing
