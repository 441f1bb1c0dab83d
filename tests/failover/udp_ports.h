// Free loopback UDP/TCP ports for tests (bind to 0, read the port, close).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <string>

namespace ftd::testing {
int free_udp_port();
int free_tcp_port();
inline std::string loopback(int port) { return "127.0.0.1:" + std::to_string(port); }
// 127.0.0.1:port as a socket address.
inline sockaddr_in loopback_addr(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}
}  // namespace ftd::testing
