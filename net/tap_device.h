// A Linux tap interface owned by this process: created on open() in the calling
// thread's network namespace (IFF_TAP | IFF_NO_PI: reads/writes are bare
// Ethernet frames), brought up, optionally enslaved to a bridge, and gone when
// the fd closes (it is never made persistent).
#pragma once

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace ftd::net {

struct TapOptions {
  std::string name;    // interface name, at most 15 characters
  std::string bridge;  // if set: `ip link set <name> master <bridge>` (via ioctl)
  bool up = true;
  bool disable_ipv6 = false;  // keeps the kernel's own ND/MLD chatter off the link
};

class TapDevice {
 public:
  TapDevice() = default;
  TapDevice(TapDevice&&) noexcept = default;
  TapDevice& operator=(TapDevice&&) noexcept = default;

  static Result<TapDevice> open(const TapOptions& options);

  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  bool valid() const { return fd_.valid(); }
  void close() { fd_.reset(); }  // the kernel removes the interface

 private:
  UniqueFd fd_;
  std::string name_;
};

// Interface helpers that act in the calling thread's network namespace.
Status set_link_up(const std::string& ifname, bool up);
Status attach_to_bridge(const std::string& ifname, const std::string& bridge);
Result<int> interface_index(const std::string& ifname);

}  // namespace ftd::net
