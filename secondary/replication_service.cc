#include "secondary/replication_service.h"

#include <spdlog/spdlog.h>

#include "security/peer_identity.h"

namespace ftd {

grpc::Status ReplicationService::Replicate(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::SecondaryMessage, v1::PrimaryMessage>* stream) {
  // Before the first Read: a stranger's stream must not even become the
  // active one (which would cancel the real primary's) or touch the replica.
  if (!peer_identity_.empty()) {
    if (auto st = check_peer_identity(*context, peer_identity_); !st.ok()) {
      spdlog::warn("replication.rejected peer={} identity={} reason=\"{}\"", context->peer(),
                   identity_for_log(*context), st.error_message());
      return st;
    }
  }
  std::shared_ptr<SecondaryVm> replica = replica_();
  if (!replica) {
    spdlog::warn("replication.rejected peer={} reason=\"VM '{}' runs here as primary\"",
                 context->peer(), vm_name_);
    return {grpc::StatusCode::FAILED_PRECONDITION,
            fmt::format("VM '{}' runs on this host as primary: it accepts no primary", vm_name_)};
  }
  return replica->serve(context, stream);
}

}  // namespace ftd
