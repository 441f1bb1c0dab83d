#include "bench/failover_poller.h"

#include "tests/e2e/client_probes.h"

namespace ftd::bench {

FailoverPoller::FailoverPoller(testing::Daemon& daemon, std::chrono::milliseconds period)
    : daemon_(daemon), period_(period) {
  thread_ = std::thread([this] { run(); });
}

void FailoverPoller::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void FailoverPoller::run() {
  auto first = [](std::atomic<double>& at, bool now) {
    if (now && at == 0) at = testing::unix_now_s();
  };
  while (!stop_) {
    const auto next = std::chrono::steady_clock::now() + period_;
    if (auto s = daemon_.status()) {
      ++polls_;
      const auto& f = s->failover();
      first(peer_lost_at_, f.reason().starts_with("peer lost"));
      first(granted_at_, f.may_run_alone());
      first(active_at_, f.state() == "active");
    }
    std::this_thread::sleep_until(next);
  }
}

}  // namespace ftd::bench
