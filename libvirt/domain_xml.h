// A libvirt domain's XML, checked and edited for ftd (libxml2).
#pragma once

#include <string>

#include "common/result.h"

namespace ftd {

struct DomainForFtd {
  std::string xml;  // the domain without its <interface> elements
  std::string mac;  // the one interface's MAC; empty: the domain has none
};

// Refuses <hostdev> (PCI/USB passthrough) and more than one <interface>
// (ftd protects one NIC); removes the interface, keeping its MAC.
Result<DomainForFtd> prepare_domain_xml(const std::string& xml);

}  // namespace ftd
