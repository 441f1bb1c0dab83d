// Polls one daemon's failover status on its own thread (every `period`) and
// remembers the first moment (unix s) the secondary saw the peer lost, was
// granted the right to run, and reported active. Complements the log: a
// decision change that keeps (decision, state) is not logged, a poll sees it.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/system/daemon_harness.h"

namespace ftd::bench {

class FailoverPoller {
 public:
  FailoverPoller(testing::Daemon& daemon, std::chrono::milliseconds period);
  ~FailoverPoller() { stop(); }
  FailoverPoller(const FailoverPoller&) = delete;
  FailoverPoller& operator=(const FailoverPoller&) = delete;
  void stop();

  double peer_lost_at() const { return peer_lost_at_; }  // 0: not yet
  double granted_at() const { return granted_at_; }
  double active_at() const { return active_at_; }
  long polls() const { return polls_; }

 private:
  void run();
  testing::Daemon& daemon_;
  std::chrono::milliseconds period_;
  std::atomic<bool> stop_{false};
  std::atomic<double> peer_lost_at_{0}, granted_at_{0}, active_at_{0};
  std::atomic<long> polls_{0};
  std::thread thread_;
};

}  // namespace ftd::bench
