// Arbiter backed by the local corosync's quorum (libquorum + libvotequorum):
// only the side that is quorate without its peer, stably for `settle`, may
// run alone. The rule and its timing argument: failover/quorum_rule.h and
// docs/corosync.md.
// Thread contract: thread-safe; one internal thread owns the corosync IPC and
// publishes snapshots; current()/snapshot() only read them under a mutex;
// the destructor stops and joins that thread.
#pragma once

#include <chrono>
#include <memory>
#include <thread>

#include "common/mutex.h"
#include "common/result.h"
#include "failover/arbiter.h"
#include "failover/quorum_rule.h"

namespace ftd {

struct CorosyncArbiterOptions {
  QuorumRule rule;
  // How often corosync is asked for quorum/votes besides change callbacks;
  // also the liveness probe behind rule.stale_after.
  std::chrono::milliseconds refresh{100};
  // How long create() waits for the first membership before failing.
  std::chrono::milliseconds connect_timeout{2000};
};

class CorosyncArbiter final : public Arbiter {
 public:
  // Fails (kUnavailable, with the reason) when corosync cannot be reached.
  static Result<std::unique_ptr<CorosyncArbiter>> create(CorosyncArbiterOptions options);
  ~CorosyncArbiter() override;

  std::string name() const override { return "corosync"; }
  ArbiterVerdict current() const override;
  // Waits until the rule grants running alone, or the timeout. Error only
  // when corosync is unreachable for the whole wait.
  Result<ArbiterVerdict> claim(std::chrono::milliseconds timeout) override;
  Result<ArbiterVerdict> mark_alone(std::chrono::milliseconds) override { return current(); }

  QuorumSnapshot snapshot() const;  // for tests, the probe and `ftctl status`

 private:
  explicit CorosyncArbiter(CorosyncArbiterOptions options);
  void run(std::stop_token stop);
  void publish(QuorumSnapshot next);

  const CorosyncArbiterOptions options_;
  mutable Mutex mu_;
  CondVar changed_;
  QuorumSnapshot snapshot_ FTD_GUARDED_BY(mu_);
  bool first_answer_ FTD_GUARDED_BY(mu_) = false;
  std::jthread thread_;  // last member: starts after, stops before the state above
};

}  // namespace ftd
