// Failover for the synthetic workload: there is no VM to start, so activation
// checks that the replica is a state the workload really passed through
// (device state decodes; with `verify` the RAM image equals a replay of the
// recorded number of writes) and reports where the workload resumes.
#pragma once

#include "synthetic/synthetic_engine.h"
#include "secondary/activator.h"

namespace ftd {

class SyntheticActivator : public Activator {
 public:
  SyntheticActivator(SyntheticEngine::Config config, bool verify)
      : config_(config), verify_(verify) {}
  std::string name() const override { return "synthetic"; }
  Result<ActivationReport> activate(uint64_t epoch, std::span<const std::byte> memory,
                                    std::span<const std::byte> device_state) override;

 private:
  SyntheticEngine::Config config_;
  bool verify_;
};

}  // namespace ftd
