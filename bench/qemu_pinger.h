// ICMP echo from inside a network namespace: the raw socket is created on a
// thread that entered the namespace and stays there wherever it is used.
// Measures round-trip times through the guest's NIC path (tap -> proxy ->
// QEMU -> guest kernel and back), and how long until a guest first answers.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "net/netns.h"

namespace ftd::bench {

struct PingResult {
  uint64_t sent = 0, received = 0;
  std::vector<double> rtt_us;  // received replies only
};

class Pinger {
 public:
  using Clock = std::chrono::steady_clock;

  static Result<Pinger> open(const net::NetNamespace& ns, const std::string& target_ipv4);

  // One echo request every `interval` for `duration`; replies that take longer
  // than `reply_timeout` after the last request count as lost.
  PingResult run(std::chrono::milliseconds interval, std::chrono::milliseconds duration,
                 std::chrono::milliseconds reply_timeout = std::chrono::milliseconds(1000));
  // Pings every `interval` until the first reply; returns when it arrived.
  Result<Clock::time_point> wait_answer(std::chrono::milliseconds interval,
                                        std::chrono::milliseconds timeout);

 private:
  Status send_echo(uint16_t seq);
  // Next echo reply of ours arriving before `until`: its sequence number.
  std::optional<uint16_t> recv_reply(Clock::time_point until);

  UniqueFd fd_;
  uint32_t target_ = 0;  // network byte order
  uint16_t id_ = 0;
  uint16_t next_seq_ = 0;
};

}  // namespace ftd::bench
