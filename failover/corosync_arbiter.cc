#include "failover/corosync_arbiter.h"

#include <poll.h>

#include "common/log.h"
#include "failover/corosync_ipc.h"

namespace ftd {

using Clock = std::chrono::steady_clock;

CorosyncArbiter::CorosyncArbiter(CorosyncArbiterOptions options) : options_(std::move(options)) {}

CorosyncArbiter::~CorosyncArbiter() {
  thread_.request_stop();
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::unique_ptr<CorosyncArbiter>> CorosyncArbiter::create(CorosyncArbiterOptions options) {
  if (options.rule.peer_nodeid == 0) {
    return make_error(ErrorCode::kInvalidArgument, "corosync arbiter: peer nodeid is required");
  }
  if (options.rule.stale_after <= options.refresh) {
    return make_error(ErrorCode::kInvalidArgument,
                      "corosync arbiter: stale_after ({} ms) must exceed refresh ({} ms)",
                      options.rule.stale_after.count(), options.refresh.count());
  }
  std::unique_ptr<CorosyncArbiter> arbiter(new CorosyncArbiter(std::move(options)));
  CorosyncArbiter& a = *arbiter;
  a.thread_ = std::jthread([&a](std::stop_token st) { a.run(st); });
  MutexLock lock(a.mu_);
  a.changed_.wait_for(a.mu_, a.options_.connect_timeout,
                      [&]() FTD_REQUIRES(a.mu_) { return a.first_answer_; });
  if (!a.snapshot_.connected) {
    std::string why = a.snapshot_.error.empty() ? "no answer" : a.snapshot_.error;
    return make_error(ErrorCode::kUnavailable, "corosync arbiter: {}", why);
  }
  return arbiter;
}

void CorosyncArbiter::publish(QuorumSnapshot next) {
  MutexLock lock(mu_);
  const auto now = Clock::now();
  if (next.connected) next.refreshed = now;
  track_alone(snapshot_, next, options_.rule.peer_nodeid, now);
  const bool was = snapshot_.connected && snapshot_.quorate;
  if (was != (next.connected && next.quorate) || snapshot_.ring_seq != next.ring_seq ||
      snapshot_.members != next.members) {
    spdlog::info("corosync.quorum {}", describe(next));
  }
  snapshot_ = std::move(next);
  first_answer_ = true;
  changed_.notify_all();
}

// Owns the IPC: reconnects when corosync goes away, dispatches callbacks when
// its fd is readable, and asks for quorum every `refresh` so that a silent
// corosync turns into a stale snapshot (doubt) rather than an old "quorate".
void CorosyncArbiter::run(std::stop_token stop) {
  std::unique_ptr<CorosyncIpc> ipc;
  while (!stop.stop_requested()) {
    if (!ipc) {
      auto opened = CorosyncIpc::open();
      if (!opened) {
        QuorumSnapshot down;
        down.error = opened.error().message;
        publish(std::move(down));
        MutexLock lock(mu_);
        changed_.wait_for(mu_, options_.refresh, [&] { return stop.stop_requested(); });
        continue;
      }
      ipc = std::move(*opened);
    }
    pollfd pfd{ipc->fd(), POLLIN, 0};
    const int n = ::poll(&pfd, 1, static_cast<int>(options_.refresh.count()));
    Status st = ok();
    if (n > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) st = ipc->dispatch();
    QuorumSnapshot next;
    if (st) st = ipc->refresh(next);
    if (!st) {
      next = QuorumSnapshot{};
      next.error = st.error().message;
      ipc.reset();
    }
    publish(std::move(next));
  }
}

QuorumSnapshot CorosyncArbiter::snapshot() const {
  MutexLock lock(mu_);
  return snapshot_;
}

ArbiterVerdict CorosyncArbiter::current() const {
  MutexLock lock(mu_);
  return decide(snapshot_, options_.rule, Clock::now());
}

Result<ArbiterVerdict> CorosyncArbiter::claim(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  MutexLock lock(mu_);
  bool ever_connected = snapshot_.connected;
  ArbiterVerdict v;
  // Snapshots arrive at least every `refresh`, so the settle time is re-checked.
  changed_.wait_until(mu_, deadline, [&]() FTD_REQUIRES(mu_) {
    ever_connected = ever_connected || snapshot_.connected;
    v = decide(snapshot_, options_.rule, Clock::now());
    return v.may_run_alone;
  });
  if (!ever_connected) {
    return make_error(ErrorCode::kUnavailable, "corosync arbiter: {}", snapshot_.error);
  }
  return v;
}

}  // namespace ftd
