// ControlTarget adapters for the two roles.
#pragma once

#include "daemon/control_service.h"
#include "daemon/failover_wiring.h"
#include "primary/primary_vm.h"
#include "secondary/secondary_vm.h"

namespace ftd {

class PrimaryTarget : public ControlTarget {
 public:
  PrimaryTarget(PrimaryVm& vm, const VmFailover& failover) : vm_(vm), failover_(failover) {}
  v1::VmStatus status() override {
    v1::VmStatus s = vm_.status();
    failover_.fill(s);
    return s;
  }
  Status protect() override { return vm_.protect(); }
  Status unprotect() override { return vm_.unprotect(); }
  Result<v1::FailoverReply> failover() override {
    return make_error(ErrorCode::kFailedPrecondition,
                      "VM '{}' runs here (primary); fail over by asking its secondary ({})",
                      vm_.name(), vm_.status().peer());
  }
  Status migrate() override {
    return make_error(ErrorCode::kUnimplemented,
                      "planned migration is not implemented yet (tracked as its own issue)");
  }

 private:
  PrimaryVm& vm_;
  const VmFailover& failover_;
};

class SecondaryTarget : public ControlTarget {
 public:
  SecondaryTarget(SecondaryVm& vm, const VmFailover& failover) : vm_(vm), failover_(failover) {}
  v1::VmStatus status() override {
    v1::VmStatus s = vm_.status();
    failover_.fill(s);
    return s;
  }
  Status protect() override {
    return make_error(ErrorCode::kFailedPrecondition,
                      "protection is started on the primary; this is VM '{}''s secondary",
                      vm_.name());
  }
  Status unprotect() override { return protect(); }
  Result<v1::FailoverReply> failover() override {
    FTD_ASSIGN_OR_RETURN(ActivationReport r, vm_.failover());
    v1::FailoverReply reply;
    reply.set_epoch(r.epoch);
    reply.set_activation_us(r.activation_us);
    reply.set_message(r.detail);
    return reply;
  }
  Status migrate() override {
    return make_error(ErrorCode::kUnimplemented,
                      "planned migration is not implemented yet (tracked as its own issue)");
  }

 private:
  SecondaryVm& vm_;
  const VmFailover& failover_;
};

}  // namespace ftd
