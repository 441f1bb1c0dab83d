// Addresses on the e2e tests' guest LAN (10.77.0.0/24) of HostLan: the
// guest's kernel command line and the client probes use them.
#pragma once

namespace ftd::testing {

inline constexpr const char* kGuestIp = "10.77.0.2";
inline constexpr const char* kGuestCidr = "10.77.0.2/24";
inline constexpr const char* kClientIp = "10.77.0.10";
inline constexpr const char* kClientCidr = "10.77.0.10/24";

}  // namespace ftd::testing
