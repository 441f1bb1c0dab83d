// QEMU's command-line syntax without QEMU: argv → options, and an option's
// value → properties, in both the key=value form (",," escapes a comma) and
// the JSON form (`-device {"driver":...}`) that libvirt writes.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ftd {

// One QEMU option as written: "-name" and its value (none for a flag).
struct QemuOption {
  std::string name;  // normalised: one leading dash, -M spelled -machine
  std::optional<std::string> value;
};

// Groups argv into options. A QEMU option takes one value unless it is one of
// QEMU 7.2's flags (qemu-options.hx, HAS_ARG unset); "--name" is "-name".
Result<std::vector<QemuOption>> split_qemu_options(const std::vector<std::string>& args);

// An option value's properties. `implied_key` names the first element when
// it has no "=" (e.g. "driver" for -device: "virtio-rng-pci,id=rng0"). JSON
// scalars become strings (true/false as "on"/"off"); nested objects their dump.
using QemuProps = std::map<std::string, std::string, std::less<>>;
Result<QemuProps> parse_qemu_props(std::string_view value, std::string_view implied_key);

// `value` as one value of the key=value form: every comma doubled (a path
// with a comma would otherwise end the value there).
std::string qemu_opt_escape(std::string_view value);

// "on"/"true"/"yes"/"y" (QEMU's boolean spellings).
bool qemu_bool(std::string_view v);

}  // namespace ftd
