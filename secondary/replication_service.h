// gRPC Replication service: authenticates the primary, then routes its
// Replicate stream to the SecondaryVm.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "ftd.grpc.pb.h"
#include "secondary/secondary_vm.h"

namespace ftd {

class ReplicationService final : public v1::Replication::Service {
 public:
  // `peer_identity` empty: no TLS, every peer is served (loopback or --insecure).
  // Otherwise only a primary whose certificate names it gets past the handshake.
  explicit ReplicationService(SecondaryVm& vm, std::string peer_identity = "")
      : replica_([&vm] { return std::shared_ptr<SecondaryVm>(&vm, [](SecondaryVm*) {}); }),
        peer_identity_(std::move(peer_identity)) {}
  // The replica a stream feeds is looked up per stream: a VM's role changes
  // at run time (null: it runs here as primary, and streams are refused).
  using ReplicaLookup = std::function<std::shared_ptr<SecondaryVm>()>;
  ReplicationService(ReplicaLookup replica, std::string vm_name, std::string peer_identity)
      : replica_(std::move(replica)),
        vm_name_(std::move(vm_name)),
        peer_identity_(std::move(peer_identity)) {}
  grpc::Status Replicate(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::SecondaryMessage, v1::PrimaryMessage>* stream) override;

 private:
  const ReplicaLookup replica_;
  const std::string vm_name_;
  const std::string peer_identity_;
};

}  // namespace ftd
