// gRPC Replication service: authenticates the primary, then routes its
// Replicate stream to the SecondaryVm.
#pragma once

#include <string>

#include "ftd.grpc.pb.h"
#include "secondary/secondary_vm.h"

namespace ftd {

class ReplicationService final : public v1::Replication::Service {
 public:
  // `peer_identity` empty: no TLS, every peer is served (loopback or --insecure).
  // Otherwise only a primary whose certificate names it gets past the handshake.
  explicit ReplicationService(SecondaryVm& vm, std::string peer_identity = "")
      : vm_(vm), peer_identity_(std::move(peer_identity)) {}
  grpc::Status Replicate(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::SecondaryMessage, v1::PrimaryMessage>* stream) override;

 private:
  SecondaryVm& vm_;
  const std::string peer_identity_;
};

}  // namespace ftd
