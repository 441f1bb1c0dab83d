// The control API's view of a VM: every call goes to its ManagedVm, which
// knows the VM's current role.
#pragma once

#include "daemon/control_service.h"
#include "planning/plan_proto.h"
#include "roles/managed_vm.h"

namespace ftd {

class VmTarget : public ControlTarget {
 public:
  explicit VmTarget(ManagedVm& vm) : vm_(vm) {}
  v1::VmStatus status() override { return vm_.status(); }
  Status protect(const std::string& peer) override { return vm_.protect(peer); }
  Status unprotect() override { return vm_.unprotect(); }
  Result<v1::FailoverReply> failover() override { return vm_.failover(); }
  Result<v1::MigrateReply> migrate(std::chrono::milliseconds sync_timeout) override {
    return vm_.migrate(sync_timeout);
  }
  Result<v1::PlanInputs> plan(const v1::PlanRequest& request) override {
    planning::SampleOptions options{
        .window = std::chrono::milliseconds(request.sample_ms() ? request.sample_ms() : 5000),
        .link_mbps = request.link_mbps()};
    FTD_ASSIGN_OR_RETURN(auto inputs, vm_.plan(options));
    return planning::to_proto(inputs);
  }

 private:
  ManagedVm& vm_;
};

}  // namespace ftd
