// Free loopback UDP/TCP ports for tests (bind to 0, read the port, close).
#pragma once

#include <string>

namespace ftd::testing {
int free_udp_port();
int free_tcp_port();
inline std::string loopback(int port) { return "127.0.0.1:" + std::to_string(port); }
}  // namespace ftd::testing
