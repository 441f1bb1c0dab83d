// gRPC Replication service: routes each Replicate stream to its SecondaryVm.
#pragma once

#include "ftd.grpc.pb.h"
#include "secondary/secondary_vm.h"

namespace ftd {

class ReplicationService final : public v1::Replication::Service {
 public:
  explicit ReplicationService(SecondaryVm& vm) : vm_(vm) {}
  grpc::Status Replicate(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::SecondaryMessage, v1::PrimaryMessage>* stream) override {
    return vm_.serve(context, stream);
  }

 private:
  SecondaryVm& vm_;
};

}  // namespace ftd
