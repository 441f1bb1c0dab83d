// A libvirt domain, read through a libvirtd, as an ftd VM spec.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace ftd {

struct LibvirtVm {
  std::vector<std::string> spec_args;  // for parse_vm_spec()
  std::string mac;                     // the domain's NIC; empty: none declared
};

// Connects to `uri`, reads domain `name`'s XML, checks and strips it
// (prepare_domain_xml) and has libvirt's QEMU driver translate it.
Result<LibvirtVm> load_libvirt_domain(const std::string& uri, const std::string& name);

}  // namespace ftd
