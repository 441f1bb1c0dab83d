// Automatic failover hooked into one VM: builds heartbeat + arbiter +
// FailoverMonitor from the daemon's options (failover/failover_options.h) and
// connects the monitor's callbacks to the VM, and the VM's acks/applies to the
// heartbeat. Also turns the monitor's status into the control API's message.
#pragma once

#include <atomic>
#include <memory>

#include "failover/failover_options.h"
#include "ftd.pb.h"
#include "primary/primary_vm.h"
#include "secondary/secondary_vm.h"

namespace ftd {

// Owns the failover parts; the VM must outlive it (the monitor calls into it).
class VmFailover {
 public:
  static Result<std::unique_ptr<VmFailover>> for_primary(const FailoverOptions& o, PrimaryVm& vm);
  static Result<std::unique_ptr<VmFailover>> for_secondary(const FailoverOptions& o,
                                                           SecondaryVm& vm);
  // Fills `status.failover`: arbiter, lease term, heartbeat age, decision.
  void fill(v1::VmStatus& status) const;

  // Planned migration: the arbiter's right to run the VM moves with it
  // (Arbiter::release_for_handover / hold_again / claim_for_handover); all
  // succeed at once without automatic failover.
  Status release_for_handover();
  void hold_again();
  Result<bool> regain_after_handover();
  Status claim_for_handover();

  // The primary's gates may still hold run_alone's predicate, which asks the
  // monitor: from here on it answers "no" instead of reaching a dead monitor.
  ~VmFailover();

 private:
  FailoverParts parts_;
  std::shared_ptr<std::atomic<const FailoverMonitor*>> monitor_for_gates_;
};

// What `ftctl status` shows when no heartbeat link is configured.
void fill_failover_off(v1::VmStatus& status);

}  // namespace ftd
