#include "security/address_policy.h"

#include <arpa/inet.h>

#include <string>

namespace ftd {
namespace {

// "ipv4:1.2.3.4:80" -> "1.2.3.4", "[::1]:80" -> "::1", "host:80" -> "host".
std::string_view host_part(std::string_view a) {
  for (std::string_view scheme : {"ipv4:", "ipv6:", "dns:///", "dns:"})
    if (a.starts_with(scheme)) {
      a.remove_prefix(scheme.size());
      break;
    }
  if (a.starts_with('[')) {
    auto close = a.find(']');
    return close == std::string_view::npos ? a : a.substr(1, close - 1);
  }
  // One colon: host:port. More: a bare IPv6 address without a port.
  auto colon = a.find(':');
  if (colon != std::string_view::npos && a.find(':', colon + 1) == std::string_view::npos)
    return a.substr(0, colon);
  return a;
}

}  // namespace

std::string_view unix_socket_path(std::string_view address) {
  if (!address.starts_with("unix:")) return {};
  address.remove_prefix(5);
  // unix:///path is also accepted by gRPC.
  if (address.starts_with("//")) address.remove_prefix(2);
  return address;
}

bool is_host_local(std::string_view address) {
  if (!unix_socket_path(address).empty()) return true;
  if (address.starts_with("unix-abstract:")) return false;
  const std::string host(host_part(address));
  if (host == "localhost") return true;
  // Parsed, not prefix-matched: "127.example.com" is a name anyone can own.
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

Status check_plaintext_allowed(std::string_view flag, std::string_view address, bool tls,
                               bool insecure) {
  if (tls || insecure || address.empty() || is_host_local(address)) return ok();
  return make_error(ErrorCode::kInvalidArgument,
                    "{} {} is reachable from other hosts: give --tls-cert/--tls-key/--tls-ca "
                    "(and --peer-identity), or --insecure to allow plaintext knowingly",
                    flag, address);
}

Status check_control_plaintext_allowed(std::string_view address, bool tls, bool insecure) {
  if (tls || insecure || !unix_socket_path(address).empty()) return ok();
  return make_error(ErrorCode::kInvalidArgument,
                    "--control {} is a TCP address any local user (or host) can reach: use "
                    "unix:/path, give --tls-cert/--tls-key/--tls-ca, or --insecure",
                    address);
}

}  // namespace ftd
