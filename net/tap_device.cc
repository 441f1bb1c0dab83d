#include "net/tap_device.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>

namespace ftd::net {
namespace {

Result<ifreq> make_ifreq(const std::string& ifname) {
  ifreq ifr{};
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
    return make_error(ErrorCode::kInvalidArgument, "bad interface name '{}' (1..{} chars)", ifname,
                      IFNAMSIZ - 1);
  }
  std::memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  return ifr;
}

// Interface ioctls need some socket of the namespace; a datagram one is cheapest.
Result<UniqueFd> control_socket() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return errno_error("socket(AF_INET)");
  return s;
}

}  // namespace

Status set_link_up(const std::string& ifname, bool up) {
  FTD_ASSIGN_OR_RETURN(ifreq ifr, make_ifreq(ifname));
  FTD_ASSIGN_OR_RETURN(UniqueFd s, control_socket());
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return errno_error("SIOCGIFFLAGS " + ifname);
  if (up) {
    ifr.ifr_flags |= IFF_UP;
  } else {
    ifr.ifr_flags &= ~IFF_UP;
  }
  if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) return errno_error("SIOCSIFFLAGS " + ifname);
  return ok();
}

Result<int> interface_index(const std::string& ifname) {
  FTD_ASSIGN_OR_RETURN(ifreq ifr, make_ifreq(ifname));
  FTD_ASSIGN_OR_RETURN(UniqueFd s, control_socket());
  if (::ioctl(s.get(), SIOCGIFINDEX, &ifr) != 0) return errno_error("SIOCGIFINDEX " + ifname);
  return ifr.ifr_ifindex;
}

Status attach_to_bridge(const std::string& ifname, const std::string& bridge) {
  FTD_ASSIGN_OR_RETURN(int index, interface_index(ifname));
  FTD_ASSIGN_OR_RETURN(ifreq ifr, make_ifreq(bridge));
  ifr.ifr_ifindex = index;
  FTD_ASSIGN_OR_RETURN(UniqueFd s, control_socket());
  if (::ioctl(s.get(), SIOCBRADDIF, &ifr) != 0) {
    return errno_error(fmt::format("attach {} to bridge {}", ifname, bridge));
  }
  return ok();
}

Result<TapDevice> TapDevice::open(const TapOptions& options) {
  FTD_ASSIGN_OR_RETURN(ifreq ifr, make_ifreq(options.name));
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) return errno_error("open /dev/net/tun");
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
    return errno_error("TUNSETIFF tap " + options.name);
  }
  TapDevice tap;
  tap.fd_ = std::move(fd);
  tap.name_ = ifr.ifr_name;
  if (options.disable_ipv6) {
    // Before the link goes up, so no router solicitation ever leaves.
    std::ofstream f("/proc/sys/net/ipv6/conf/" + tap.name_ + "/disable_ipv6");
    f << "1";
    // /proc/sys/net follows the opener's namespace; a missing IPv6 stack is not an error.
  }
  if (!options.bridge.empty()) FTD_TRY(attach_to_bridge(tap.name_, options.bridge));
  if (options.up) FTD_TRY(set_link_up(tap.name_, true));
  return tap;
}

}  // namespace ftd::net
