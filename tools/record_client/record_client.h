// One streaming session against the guest record service: connect, send
// numbered records at a fixed rate, verify every reply, survive long stalls
// (a failover can hold replies back for seconds while TCP retransmits).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "tools/record_client/record_verifier.h"

namespace ftd::record {

struct ClientOptions {
  std::string host;
  uint16_t port = 7000;
  double rate = 100;                                  // records per second
  std::chrono::milliseconds duration{0};              // 0: until stop_fd becomes readable
  std::chrono::milliseconds recv_timeout{30000};      // longest wait for a reply
  std::chrono::milliseconds connect_timeout{10000};   // keeps retrying until then
  std::chrono::milliseconds progress_interval{1000};  // 0: no progress lines
};

// Runs a session to the end and returns its verdict. `stop_fd` (e.g. a signalfd
// for SIGINT/SIGTERM; -1 for none) becomes readable to ask for a stop: sending
// ends, outstanding replies are awaited (up to recv_timeout); a second stop
// request ends the wait. Never throws; failures are in Summary::error.
Summary run_session(const ClientOptions& options, int stop_fd);

}  // namespace ftd::record
