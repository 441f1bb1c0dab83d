// The operator's own QEMU options for a protected VM (docs/vm-spec.md): vCPUs,
// machine type, firmware, disks, devices. ftd adds only what protection needs
// (shared RAM backend, its QMP socket, the output-commit NIC, disk node names)
// and refuses what would break checkpoint consistency or output commit. The
// same spec runs on both hosts; its digest travels in the replication Hello.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "qemu/qemu_opts.h"

namespace ftd {

struct VmSpec {
  // What ftd passes to QEMU, in the operator's order, minus -m and -machine
  // (ftd writes those, merged with what protection needs).
  std::vector<QemuOption> options;
  std::optional<uint64_t> memory_mib;  // the spec's -m, if any
  std::string machine;                 // the spec's -machine value; empty: ftd's default
  bool boots_itself = false;  // -kernel/-bios/-drive/-blockdev: no default test-guest kernel
  bool has_serial = false;    // -serial given: ftd adds no serial log of its own

  // The options as argv (flattened).
  std::vector<std::string> argv() const;
  // Hex xxh3-128 of the normalised options, -m and -machine included: equal
  // on both hosts iff they run the same machine definition.
  std::string digest() const;
};

// Parses and validates `args` (one QEMU argument per element). Every refusal
// names the option and why ftd cannot protect it.
Result<VmSpec> parse_vm_spec(const std::vector<std::string>& args);

// A spec file: one QEMU argument per line (no shell quoting: a line is one
// argument, spaces included); blank lines and lines starting with '#' are
// skipped, leading and trailing whitespace trimmed.
Result<std::vector<std::string>> read_vm_spec_file(const std::string& path);

}  // namespace ftd
