#include "failover/no_arbiter.h"

namespace ftd {

ArbiterVerdict NoArbiter::current() const {
  return {.may_run_alone = false, .term = 0, .evidence = "automatic failover off: " + why_};
}

Result<ArbiterVerdict> NoArbiter::claim(std::chrono::milliseconds) { return current(); }

}  // namespace ftd
