#include "daemon/control_service.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <functional>

#include "proto/status_mapping.h"
#include "security/peer_identity.h"

namespace ftd {
namespace {

// State-changing calls are logged with who made them (address and, over
// TLS, the certificate's names) and how they ended: the audit trail for
// "who failed this VM over".
grpc::Status audited(const char* method, const grpc::ServerContext& context, const std::string& vm,
                     const std::function<grpc::Status()>& call) {
  const std::string caller = describe_caller(context);
  spdlog::info("control.call method={} vm={} {}", method, vm.empty() ? "(default)" : vm, caller);
  grpc::Status st = call();
  if (!st.ok())
    spdlog::warn("control.refused method={} vm={} {} reason=\"{}\"", method, vm, caller,
                 st.error_message());
  return st;
}

}  // namespace

Result<ControlTarget*> ControlService::find(const std::string& name) const {
  if (auto it = targets_.find(name); it != targets_.end()) return it->second;
  if (name.empty() && targets_.size() == 1) return targets_.begin()->second;
  std::string known;
  for (auto& [n, t] : targets_) known += (known.empty() ? "" : ", ") + n;
  if (name.empty())
    return make_error(ErrorCode::kInvalidArgument, "name a VM (this daemon has: {})", known);
  return make_error(ErrorCode::kNotFound, "no VM named '{}' on this daemon (it has: {})", name,
                    known);
}

v1::StatusReply ControlService::snapshot() const {
  v1::StatusReply reply;
  for (auto& [n, t] : targets_) *reply.add_vms() = t->status();
  return reply;
}

grpc::Status ControlService::Status(grpc::ServerContext*, const v1::StatusRequest* req,
                                    v1::StatusReply* reply) {
  if (req->vm_name().empty()) {
    *reply = snapshot();
    return grpc::Status::OK;
  }
  auto t = find(req->vm_name());
  if (!t) return to_grpc_status(t.error());
  *reply->add_vms() = (*t)->status();
  return grpc::Status::OK;
}

grpc::Status ControlService::Protect(grpc::ServerContext* context, const v1::ProtectRequest* req,
                                     v1::ProtectReply* reply) {
  return audited("protect", *context, req->vm_name(), [&]() -> grpc::Status {
    auto t = find(req->vm_name());
    if (!t) return to_grpc_status(t.error());
    if (auto st = (*t)->protect(req->peer()); !st) return to_grpc_status(st.error());
    reply->set_message(req->peer().empty() ? "protected" : "protected to " + req->peer());
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::Unprotect(grpc::ServerContext* context,
                                       const v1::UnprotectRequest* req, v1::UnprotectReply* reply) {
  return audited("unprotect", *context, req->vm_name(), [&]() -> grpc::Status {
    auto t = find(req->vm_name());
    if (!t) return to_grpc_status(t.error());
    if (auto st = (*t)->unprotect(); !st) return to_grpc_status(st.error());
    reply->set_message("unprotected: output is no longer held");
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::Failover(grpc::ServerContext* context, const v1::FailoverRequest* req,
                                      v1::FailoverReply* reply) {
  return audited("failover", *context, req->vm_name(), [&]() -> grpc::Status {
    auto t = find(req->vm_name());
    if (!t) return to_grpc_status(t.error());
    auto r = (*t)->failover();
    if (!r) return to_grpc_status(r.error());
    *reply = *r;
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::Migrate(grpc::ServerContext* context, const v1::MigrateRequest* req,
                                     v1::MigrateReply* reply) {
  return audited("migrate", *context, req->vm_name(), [&]() -> grpc::Status {
    auto t = find(req->vm_name());
    if (!t) return to_grpc_status(t.error());
    auto done = (*t)->migrate(std::chrono::seconds(req->sync_timeout_s()));
    if (!done) return to_grpc_status(done.error());
    *reply = std::move(*done);
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::Plan(grpc::ServerContext*, const v1::PlanRequest* req,
                                  v1::PlanReply* reply) {
  // Bounds the time a control thread (and the VM's busy mark) is held.
  if (req->sample_ms() > 60'000)
    return {grpc::StatusCode::INVALID_ARGUMENT,
            fmt::format("sample of {} ms: at most 60000", req->sample_ms())};
  if (req->link_mbps() < 0 || !std::isfinite(req->link_mbps()))
    return {grpc::StatusCode::INVALID_ARGUMENT, "link Mbit/s must be >= 0"};
  auto t = find(req->vm_name());
  if (!t) return to_grpc_status(t.error());
  auto inputs = (*t)->plan(*req);
  if (!inputs) return to_grpc_status(inputs.error());
  *reply->mutable_inputs() = std::move(*inputs);
  return grpc::Status::OK;
}

grpc::Status ControlService::Events(grpc::ServerContext* context, const v1::EventsRequest* req,
                                    grpc::ServerWriter<v1::Event>* writer) {
  if (!events_) return {grpc::StatusCode::UNAVAILABLE, "this daemon keeps no event journal"};
  if (!req->vm_name().empty())
    if (auto t = find(req->vm_name()); !t) return to_grpc_status(t.error());
  uint64_t after = req->no_replay() ? events_->last_seq() : 0;
  // Streams until the client cancels or the daemon stops (end_streams, after
  // logging ftd.stop: the last pass still sends it). The short wait bounds
  // how late either is noticed.
  while (true) {
    uint64_t newest = after;
    for (const auto& e : events_->since(after, req->vm_name(), &newest))
      if (!writer->Write(e)) return grpc::Status::OK;  // client gone
    after = newest;
    if (context->IsCancelled() || ending_) break;
    events_->wait_for_newer(after, std::chrono::milliseconds(250));
  }
  return grpc::Status::OK;
}

}  // namespace ftd
