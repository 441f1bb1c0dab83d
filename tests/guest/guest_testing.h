// Test support for anything that boots the ftd test guest: where the guest
// lives, a network namespace with a tap for QEMU, and waiting on console lines.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace ftd::testing {

// Directory holding vmlinuz + initrd.img: $FTD_GUEST_DIR, else the path in
// $FTD_BUILD_DIR/guest.path (written by CMake), else
// ${FTD_GUEST_CACHE:-$HOME/.cache/ftd/guest}. Error if the guest is not built.
Result<std::filesystem::path> guest_dir();

// A network namespace /run/netns/<name> holding `lo` (up) and a tap device with
// an address, for a QEMU started inside it (SpawnOptions::netns). Deleted on
// destruction, which also removes the tap.
class TestNetns {
 public:
  static Result<TestNetns> create(std::string name, std::string tap = "tap0",
                                  std::string tap_cidr = "10.77.0.1/24");
  TestNetns(TestNetns&& o) noexcept;
  TestNetns& operator=(TestNetns&&) = delete;
  TestNetns(const TestNetns&) = delete;
  ~TestNetns();

  const std::string& name() const { return name_; }
  const std::string& tap() const { return tap_; }

 private:
  TestNetns(std::string name, std::string tap) : name_(std::move(name)), tap_(std::move(tap)) {}
  std::string name_;
  std::string tap_;
};

// QEMU command line for the test guest (TCG, no graphics, serial to a file,
// virtio-net on a tap). `append_extra` goes after "console=ttyS0 ftd.ip=...".
struct GuestBoot {
  std::filesystem::path dir;  // from guest_dir()
  std::string serial_log;
  std::string tap = "tap0";
  std::string guest_cidr = "10.77.0.2/24";
  std::string mac = "52:54:00:12:34:56";
  int memory_mib = 128;
  std::string append_extra;
  std::string initrd = "initrd.img";  // in dir; initrd-iperf.img adds iperf3 (ftd.iperf)
};
std::vector<std::string> guest_qemu_argv(const GuestBoot& boot);

// Polls a (growing) file until a line containing `needle` appears; returns that line.
Result<std::string> wait_for_line(const std::string& path, const std::string& needle,
                                  std::chrono::milliseconds timeout);

// All "ftd-tick N" numbers in the file, in order of appearance.
std::vector<uint64_t> tick_numbers(const std::string& path);

}  // namespace ftd::testing
