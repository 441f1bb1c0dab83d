// The Control gRPC service (ftctl, cluster managers): routes each request to
// the VM it names. Unknown names get NOT_FOUND listing the VMs that exist.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "common/result.h"
#include "ftd.grpc.pb.h"
#include "observability/event_journal.h"

namespace ftd {

// What the control API can do with one VM; implemented per role.
class ControlTarget {
 public:
  virtual ~ControlTarget() = default;
  virtual v1::VmStatus status() = 0;
  virtual Status protect(const std::string& peer) = 0;  // empty: the configured peer
  virtual Status unprotect() = 0;
  virtual Result<v1::FailoverReply> failover() = 0;
  virtual Result<v1::MigrateReply> migrate(std::chrono::milliseconds sync_timeout) = 0;
  virtual Result<v1::PlanInputs> plan(const v1::PlanRequest& request) = 0;
};

class ControlService final : public v1::Control::Service {
 public:
  void add(const std::string& name, ControlTarget* target) { targets_[name] = target; }
  // Where Events streams from (none: Events answers UNAVAILABLE).
  void set_events(std::shared_ptr<const EventJournal> events) { events_ = std::move(events); }

  // Ends every Events stream (at most 250 ms later): called before the
  // server shuts down, so an open `ftctl events` does not hold it up.
  void end_streams() { ending_ = true; }

  // Every VM's status: what Status returns for "all" and what /metrics renders.
  v1::StatusReply snapshot() const;

  grpc::Status Status(grpc::ServerContext*, const v1::StatusRequest*, v1::StatusReply*) override;
  grpc::Status Protect(grpc::ServerContext*, const v1::ProtectRequest*, v1::ProtectReply*) override;
  grpc::Status Unprotect(grpc::ServerContext*, const v1::UnprotectRequest*,
                         v1::UnprotectReply*) override;
  grpc::Status Failover(grpc::ServerContext*, const v1::FailoverRequest*,
                        v1::FailoverReply*) override;
  grpc::Status Migrate(grpc::ServerContext*, const v1::MigrateRequest*, v1::MigrateReply*) override;
  grpc::Status Plan(grpc::ServerContext*, const v1::PlanRequest*, v1::PlanReply*) override;
  grpc::Status Events(grpc::ServerContext*, const v1::EventsRequest*,
                      grpc::ServerWriter<v1::Event>*) override;

 private:
  Result<ControlTarget*> find(const std::string& name) const;
  std::map<std::string, ControlTarget*> targets_;
  std::shared_ptr<const EventJournal> events_;
  std::atomic<bool> ending_{false};
};

}  // namespace ftd
