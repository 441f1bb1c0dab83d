// Debian's iperf3 as the client of a bulk TCP transfer to or from the test
// guest's iperf3 server (deploy/guest, `ftd.iperf=<port>` with
// initrd-iperf.img), run inside the rig's network namespace and authenticated
// with the key and password build-guest.sh made for that guest. The result
// is iperf3's own JSON (-J), reduced to what bench/net_bench reports.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace ftd::testing {

struct IperfRun {
  std::string netns;      // where the client runs (the rig's namespace)
  std::string server_ip;  // the guest
  int port = 5201;
  std::string guest_dir;  // holds iperf3-public.pem and iperf3-credentials
  int seconds = 6;
  bool reverse = false;     // -R: the guest sends, the client receives
  std::string scratch_dir;  // iperf3's JSON and stderr land here
};

struct IperfResult {
  double seconds = 0;                // the transfer by this host's clock (the client's side)
  double guest_seconds = 0;          // the same by the guest's clock (stands still in pauses)
  double received_mbit_per_sec = 0;  // goodput: bytes received / seconds
  double sent_mbit_per_sec = 0;      // bytes sent / seconds
  uint64_t bytes_received = 0, bytes_sent = 0;
  int64_t retransmits = -1;  // the sender's TCP retransmits (-1: not reported)
  // The sending kernel's view when it is this host's (client -> guest only):
  // congestion window and smoothed RTT, the two numbers of window / RTT.
  int64_t max_snd_cwnd_bytes = -1;
  int64_t mean_rtt_us = -1;
  nlohmann::json end;  // iperf3's "end" object as it reported it
};

// iperf3's server closes its listening socket after each test and opens a new
// one (esnet/iperf PR #2066, "Keep server listener open between tests"): a
// client that connects in between is refused or reset. In a protected guest,
// stopped for checkpoints much of the time, that gap lasts long enough to hit
// a transfer started right after the previous one; wait this long in between.
inline constexpr std::chrono::seconds kIperfServerRelisten{2};

// Parses iperf3 -J output; an "error" member or a missing "end" is an error.
Result<IperfResult> parse_iperf_json(const std::string& text);

// Runs one transfer to completion (timeout: duration + 30 s).
Result<IperfResult> run_iperf(const IperfRun& run);

nlohmann::json iperf_json(const IperfResult& r);

}  // namespace ftd::testing
