#include "qemu/qemu_opts.h"

#include <array>
#include <ranges>

#include <nlohmann/json.hpp>

namespace ftd {
namespace {

// QEMU 7.2 options that take no value (qemu-options.hx entries without
// HAS_ARG); every other option takes the next argument.
constexpr std::array kFlags = {
    "-h",
    "-help",
    "-version",
    "-nodefaults",
    "-nographic",
    "-no-user-config",
    "-S",
    "-daemonize",
    "-snapshot",
    "-no-reboot",
    "-no-shutdown",
    "-enable-kvm",
    "-no-hpet",
    "-no-acpi",
    "-mem-prealloc",
    "-full-screen",
    "-no-quit",
    "-no-fd-bootchk",
    "-win2k-hack",
    "-alt-grab",
    "-ctrl-grab",
    "-s",
    "-singlestep",
    "-preconfig",
    "-enable-sync-profile",
    "-curses",
    "-portrait",
    "-xen-attach",
    "-nouserconfig",
    "-old-param",
    "-semihosting",
    "-no-frame",
    "-perfmap",
    "-sdl",
};

bool is_flag(std::string_view name) { return std::ranges::find(kFlags, name) != kFlags.end(); }

std::string normalise_name(std::string_view arg) {
  std::string name(arg.starts_with("--") ? arg.substr(1) : arg);
  if (name == "-M") name = "-machine";
  return name;
}

std::string json_scalar(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "on" : "off";
  return v.dump();
}

}  // namespace

Result<std::vector<QemuOption>> split_qemu_options(const std::vector<std::string>& args) {
  std::vector<QemuOption> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 2 || a[0] != '-')
      return make_error(ErrorCode::kInvalidArgument,
                        "argument {} '{}' is not a QEMU option (each option starts with '-'; its "
                        "value is the next argument)",
                        i + 1, a);
    QemuOption o{.name = normalise_name(a)};
    if (!is_flag(o.name)) {
      if (i + 1 >= args.size())
        return make_error(ErrorCode::kInvalidArgument, "option {} has no value", a);
      o.value = args[++i];
    }
    out.push_back(std::move(o));
  }
  return out;
}

Result<QemuProps> parse_qemu_props(std::string_view value, std::string_view implied_key) {
  QemuProps props;
  if (value.starts_with('{')) {
    auto j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      return make_error(ErrorCode::kInvalidArgument, "'{}' is not a JSON object", value);
    for (const auto& [k, v] : j.items()) props[k] = json_scalar(v);
    return props;
  }
  // key=value,key=value; ",," is a literal comma inside a value.
  std::string item;
  bool first = true;
  auto flush = [&] {
    const auto eq = item.find('=');
    if (eq == std::string::npos) {
      // A bare first element is the implied key's value; a bare later one is
      // a boolean flag ("server" = "server=on").
      props[first && !implied_key.empty() ? std::string(implied_key) : item] =
          first && !implied_key.empty() ? item : "on";
    } else {
      props[item.substr(0, eq)] = item.substr(eq + 1);
    }
    item.clear();
    first = false;
  };
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == ',' && i + 1 < value.size() && value[i + 1] == ',') {
      item += ',';
      ++i;
    } else if (value[i] == ',') {
      flush();
    } else {
      item += value[i];
    }
  }
  if (!item.empty() || !first) flush();
  return props;
}

std::string qemu_opt_escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

bool qemu_bool(std::string_view v) { return v == "on" || v == "true" || v == "yes" || v == "y"; }

}  // namespace ftd
