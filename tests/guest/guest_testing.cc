#include "tests/guest/guest_testing.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/subprocess.h"

namespace ftd::testing {

namespace fs = std::filesystem;

Result<fs::path> guest_dir() {
  fs::path dir;
  if (const char* env = std::getenv("FTD_GUEST_DIR"); env && *env) {
    dir = env;
  } else if (const char* build = std::getenv("FTD_BUILD_DIR");
             build && fs::exists(fs::path(build) / "guest.path")) {
    std::ifstream f(fs::path(build) / "guest.path");
    std::string line;
    std::getline(f, line);
    dir = line;
  } else if (const char* cache = std::getenv("FTD_GUEST_CACHE"); cache && *cache) {
    dir = cache;
  } else {
    const char* home = std::getenv("HOME");
    dir = fs::path(home ? home : "/root") / ".cache/ftd/guest";
  }
  for (const char* file : {"vmlinuz", "initrd.img", "stamp"}) {
    if (!fs::exists(dir / file)) {
      return make_error(ErrorCode::kNotFound,
                        "test guest not built: {} missing (run `ninja guest` or "
                        "deploy/guest/build-guest.sh {})",
                        (dir / file).string(), dir.string());
    }
  }
  return dir;
}

Result<TestNetns> TestNetns::create(std::string name, std::string tap, std::string tap_cidr) {
  FTD_TRY(run_command({"ip", "netns", "add", name}));
  TestNetns ns(std::move(name), std::move(tap));  // from here on, the destructor cleans up
  const std::string& n = ns.name_;
  FTD_TRY(run_command({"ip", "-n", n, "link", "set", "lo", "up"}));
  FTD_TRY(run_command({"ip", "-n", n, "tuntap", "add", "dev", ns.tap_, "mode", "tap"}));
  FTD_TRY(run_command({"ip", "-n", n, "addr", "add", tap_cidr, "dev", ns.tap_}));
  FTD_TRY(run_command({"ip", "-n", n, "link", "set", ns.tap_, "up"}));
  return ns;
}

TestNetns::TestNetns(TestNetns&& o) noexcept
    : name_(std::exchange(o.name_, {})), tap_(std::move(o.tap_)) {}

TestNetns::~TestNetns() {
  if (!name_.empty()) (void)run_command({"ip", "netns", "del", name_});
}

std::vector<std::string> guest_qemu_argv(const GuestBoot& b) {
  std::string append = "console=ttyS0 ftd.ip=" + b.guest_cidr;
  if (!b.append_extra.empty()) append += " " + b.append_extra;
  return {"qemu-system-x86_64",
          "-machine",
          "pc,accel=tcg",
          "-m",
          std::to_string(b.memory_mib),
          "-nodefaults",
          "-nographic",
          "-vga",
          "none",
          "-kernel",
          (b.dir / "vmlinuz").string(),
          "-initrd",
          (b.dir / b.initrd).string(),
          "-append",
          append,
          "-serial",
          "file:" + b.serial_log,
          "-netdev",
          "tap,id=n0,ifname=" + b.tap + ",script=no,downscript=no",
          "-device",
          "virtio-net-pci,netdev=n0,mac=" + b.mac};
}

Result<std::string> wait_for_line(const std::string& path, const std::string& needle,
                                  std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::ifstream f(path);
    std::string line;
    while (std::getline(f, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();  // serial: CRLF
      if (line.find(needle) != std::string::npos) return line;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return make_error(ErrorCode::kTimeout, "'{}' did not appear in {} within {} ms", needle, path,
                        timeout.count());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<uint64_t> tick_numbers(const std::string& path) {
  std::vector<uint64_t> ticks;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    auto at = line.find("ftd-tick ");
    if (at == std::string::npos) continue;
    std::istringstream rest(line.substr(at + 9));
    uint64_t n = 0;
    if (rest >> n) ticks.push_back(n);
  }
  return ticks;
}

}  // namespace ftd::testing
