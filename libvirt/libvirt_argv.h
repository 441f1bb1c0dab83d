// libvirt's QEMU command line (virConnectDomainXMLToNative "qemu-argv") as
// VM spec arguments: what libvirt adds to manage the VM itself is dropped.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace ftd {

// `native`: libvirt's shell-quoted line ("LC_ALL=C ... /usr/bin/qemu-system-x86_64
// -name ..."). Drops the environment and the emulator, -S, libvirt's monitor
// (-chardev charmonitor, -mon), its master-key secret object, and its RAM
// backend (refused if hugetlb) with the machine's memory-backend= that names
// it. The rest is returned for parse_vm_spec().
Result<std::vector<std::string>> spec_args_from_libvirt_argv(const std::string& native);

}  // namespace ftd
