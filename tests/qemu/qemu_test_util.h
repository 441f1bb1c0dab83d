// Shared helpers for the QEMU tests: a private temp dir and base configs.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "qemu/qemu_config.h"

namespace ftd::testing {

class TempDir {
 public:
  TempDir() {
    // /tmp keeps unix socket paths short (108-byte limit).
    char tmpl[] = "/tmp/ftd-qemu-test-XXXXXX";
    path_ = ::mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A BIOS-only machine: no kernel, enough for QMP and device-state tests.
inline QemuConfig bios_only_config(const TempDir& dir, const std::string& name = "vm") {
  QemuConfig c;
  c.memory_mib = 128;
  c.qmp_socket_path = dir.file(name + ".qmp");
  c.serial_log_path = dir.file(name + ".serial");
  return c;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// All "ftd-tick N" numbers in a serial log, in order.
inline std::vector<long> ticks_in(const std::string& text) {
  static const std::regex re("ftd-tick ([0-9]+)");
  std::vector<long> out;
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it)
    out.push_back(std::stol((*it)[1].str()));
  return out;
}

}  // namespace ftd::testing
