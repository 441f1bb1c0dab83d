// Arbitration mode "none": automatic failover is off. The verdict is always
// false and says why, so `ftctl status` and the decision log explain it.
#pragma once

#include "failover/arbiter.h"

namespace ftd {

class NoArbiter final : public Arbiter {
 public:
  explicit NoArbiter(std::string why = "no arbiter configured (--arbiter none)")
      : why_(std::move(why)) {}
  std::string name() const override { return "none"; }
  ArbiterVerdict current() const override;
  Result<ArbiterVerdict> claim(std::chrono::milliseconds timeout) override;
  Result<ArbiterVerdict> mark_alone(std::chrono::milliseconds) override { return current(); }

 private:
  const std::string why_;
};

}  // namespace ftd
