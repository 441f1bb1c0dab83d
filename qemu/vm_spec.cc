#include "qemu/vm_spec.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <fstream>
#include <string_view>

#include "common/hash.h"

namespace ftd {
namespace {

using namespace std::string_view_literals;

Error refuse(const QemuOption& o, std::string_view why) {
  return Error{ErrorCode::kInvalidArgument,
               fmt::format("VM spec: {}{}{} refused: {}", o.name, o.value ? " " : "",
                           o.value.value_or(""), why)};
}

// Options ftd itself sets, or that take the VM out of ftd's hands.
struct Owned {
  std::string_view name, why;
};
constexpr std::array kOwnedByFtd = {
    Owned{"-qmp",
          "ftd owns the VM's only QMP socket (another client could stop, migrate or "
          "change the guest behind the checkpoints)"},
    Owned{"-qmp-pretty", "ftd owns the VM's only QMP socket"},
    Owned{"-monitor", "ftd owns the VM's monitor (-monitor none + its QMP socket)"},
    Owned{"-mon", "ftd owns the VM's monitor (-monitor none + its QMP socket)"},
    Owned{"-daemonize", "ftd runs QEMU as its child (it must see it exit)"},
    Owned{"-incoming", "ftd starts the standby with -incoming defer itself"},
    Owned{"-S", "ftd decides when the guest runs (the standby starts stopped)"},
    Owned{"-pidfile", "ftd writes QEMU's pid file in its run directory (--reattach finds it)"},
    Owned{"-netdev",
          "the guest's network is ftd's output-commit NIC (--mac; --tap/--bridge on the "
          "host): another netdev would send frames before their checkpoint is "
          "acknowledged"},
    Owned{"-nic",
          "the guest's network is ftd's output-commit NIC; a -nic would bypass output "
          "commit"},
    Owned{"-net",
          "the guest's network is ftd's output-commit NIC; a -net would bypass output "
          "commit"},
    Owned{"-mem-path", "guest RAM is ftd's shared memfd (primary) or replica file (standby)"},
    Owned{"-numa",
          "guest RAM is one ftd memory backend; NUMA nodes with their own memdev are not "
          "replicated"},
    Owned{"-loadvm", "the guest state comes from ftd's checkpoints"},
};

// Ids ftd gives its own objects: the RAM backend, the NIC, the disk nodes.
bool reserved_id(std::string_view id) {
  return id == "ram0" || id == "n0" || id.starts_with("ftd-");
}

Status check_ids(const QemuOption& o, const QemuProps& p) {
  for (const char* key : {"id", "node-name"}) {
    auto it = p.find(key);
    if (it != p.end() && reserved_id(it->second))
      return std::unexpected(refuse(o, fmt::format("{} '{}' is reserved for ftd's own objects "
                                                   "(ram0, n0, ftd-*)",
                                                   key, it->second)));
  }
  return ok();
}

Status check_device(const QemuOption& o, const QemuProps& p) {
  auto driver = p.find("driver");
  if (driver == p.end()) return std::unexpected(refuse(o, "no device driver named"));
  const std::string_view d = driver->second;
  if (d.starts_with("vfio"))
    return std::unexpected(refuse(
        o,
        "VFIO/PCI passthrough: the device's state and its DMA into guest RAM live in "
        "hardware, outside what a checkpoint captures, and cannot be recreated on the standby"));
  if (d.find("vhost-user") != std::string_view::npos)
    return std::unexpected(
        refuse(o,
               "vhost-user device: another process writes guest RAM and holds device state "
               "QEMU cannot checkpoint (dirty tracking misses those writes)"));
  if (d.starts_with("virtio-balloon")) {
    for (const char* key : {"free-page-reporting", "free-page-hint"}) {
      auto it = p.find(key);
      if (it != p.end() && qemu_bool(it->second))
        return std::unexpected(
            refuse(o, fmt::format("balloon {}: the host discards pages the guest reports free, "
                                  "behind the dirty tracker (the replica keeps stale contents "
                                  "the guest then reads as zero on one side only)",
                                  key)));
    }
  }
  return check_ids(o, p);
}

Status check_object(const QemuOption& o, const QemuProps& p) {
  auto type = p.find("qom-type");
  if (type != p.end() && type->second.starts_with("memory-backend")) {
    auto huge = p.find("hugetlb");
    auto path = p.find("mem-path");
    if ((huge != p.end() && qemu_bool(huge->second)) ||
        (path != p.end() && path->second.find("huge") != std::string::npos))
      return std::unexpected(refuse(o,
                                    "hugetlb memory backend: ftd maps guest RAM in 4 KiB "
                                    "pages (shared memfd, replica file on tmpfs)"));
    return std::unexpected(
        refuse(o,
               "ftd provides the guest's one RAM backend (memfd share=on; the replica file on "
               "the standby); other backends would not be replicated"));
  }
  return check_ids(o, p);
}

// "-m 512", "-m 2G", "-m size=512M": MiB. Memory hotplug (slots/maxmem) is refused.
Result<uint64_t> memory_mib(const QemuOption& o) {
  FTD_ASSIGN_OR_RETURN(QemuProps p, parse_qemu_props(*o.value, "size"));
  if (p.contains("slots") || p.contains("maxmem"))
    return std::unexpected(refuse(o,
                                  "memory hotplug (slots/maxmem): hotplugged DIMMs are not in "
                                  "ftd's RAM backend and would not be replicated"));
  const std::string s = p.contains("size") ? p.at("size") : "";
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  std::string_view unit(end, s.data() + s.size());
  uint64_t mib = 0;
  if (ec != std::errc() || n == 0) return std::unexpected(refuse(o, "not a memory size"));
  if (unit.empty() || unit == "M" || unit == "m" || unit == "MiB")
    mib = n;
  else if (unit == "G" || unit == "g" || unit == "GiB")
    mib = n << 10;
  else if (unit == "T" || unit == "t")
    mib = n << 20;
  else
    return std::unexpected(
        refuse(o, "memory size must be a whole number of MiB (suffix M, G or T)"));
  return mib;
}

Status check_machine(const QemuOption& o) {
  FTD_ASSIGN_OR_RETURN(QemuProps p, parse_qemu_props(*o.value, "type"));
  if (p.contains("memory-backend"))
    return std::unexpected(refuse(o, "ftd sets the machine's memory-backend (its shared RAM)"));
  return ok();
}

Status check_option(const QemuOption& o) {
  for (const Owned& owned : kOwnedByFtd)
    if (o.name == owned.name) {
      if (o.name == "-netdev" && o.value && o.value->find("vhost-user") != std::string::npos)
        return std::unexpected(refuse(o,
                                      "vhost-user netdev: another process writes guest RAM "
                                      "and sends frames outside output commit"));
      return std::unexpected(refuse(o, owned.why));
    }
  if (!o.value) return ok();
  if (o.name == "-device") {
    FTD_ASSIGN_OR_RETURN(QemuProps p, parse_qemu_props(*o.value, "driver"));
    return check_device(o, p);
  }
  if (o.name == "-object") {
    FTD_ASSIGN_OR_RETURN(QemuProps p, parse_qemu_props(*o.value, "qom-type"));
    return check_object(o, p);
  }
  if (o.name == "-blockdev" || o.name == "-chardev" || o.name == "-drive") {
    FTD_ASSIGN_OR_RETURN(QemuProps p,
                         parse_qemu_props(*o.value, o.name == "-chardev" ? "backend" : ""));
    return check_ids(o, p);
  }
  return ok();
}

std::string normalised(const VmSpec& spec) {
  std::string s = fmt::format("-m\n{}\n-machine\n{}\n", spec.memory_mib.value_or(0), spec.machine);
  // '\x1f' separates a name from its value: a flag and an option whose value
  // looks like the next flag cannot normalise alike.
  for (const QemuOption& o : spec.options)
    s += o.name + (o.value ? "\x1f" + *o.value : std::string()) + "\n";
  return s;
}

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

}  // namespace

std::vector<std::string> VmSpec::argv() const {
  std::vector<std::string> a;
  for (const QemuOption& o : options) {
    a.push_back(o.name);
    if (o.value) a.push_back(*o.value);
  }
  return a;
}

std::string VmSpec::digest() const {
  const std::string s = normalised(*this);
  const XXH128_hash_t h = XXH3_128bits(s.data(), s.size());
  return fmt::format("{:016x}{:016x}", h.high64, h.low64);
}

Result<VmSpec> parse_vm_spec(const std::vector<std::string>& args) {
  FTD_ASSIGN_OR_RETURN(std::vector<QemuOption> options, split_qemu_options(args));
  VmSpec spec;
  for (QemuOption& o : options) {
    FTD_TRY(check_option(o));
    if (o.name == "-m") {
      if (spec.memory_mib) return std::unexpected(refuse(o, "-m given twice"));
      FTD_ASSIGN_OR_RETURN(spec.memory_mib, memory_mib(o));
      continue;
    }
    if (o.name == "-machine") {
      if (!spec.machine.empty()) return std::unexpected(refuse(o, "-machine given twice"));
      FTD_TRY(check_machine(o));
      spec.machine = *o.value;
      continue;
    }
    if (o.name == "-kernel" || o.name == "-bios" || o.name == "-drive" || o.name == "-blockdev")
      spec.boots_itself = true;
    if (o.name == "-serial") spec.has_serial = true;
    spec.options.push_back(std::move(o));
  }
  return spec;
}

Result<std::vector<std::string>> read_vm_spec_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kNotFound, "VM spec file {} cannot be read", path);
  std::vector<std::string> args;
  std::string line;
  while (std::getline(in, line)) {
    std::string_view t = trim(line);
    if (t.empty() || t.starts_with('#')) continue;
    args.emplace_back(t);
  }
  if (in.bad()) return make_error(ErrorCode::kIo, "VM spec file {}: read error", path);
  return args;
}

}  // namespace ftd
