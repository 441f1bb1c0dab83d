// The one mapping between ftd's errors and states and their gRPC/proto forms.
#pragma once

#include <grpcpp/grpcpp.h>

#include "common/result.h"
#include "common/vm_state.h"
#include "ftd.pb.h"

namespace ftd {

grpc::Status to_grpc_status(const Error& e);
v1::VmState to_proto(VmState state);
// The name ftctl prints ("protected"); "unknown" for values this build lacks.
std::string_view state_name(v1::VmState state);

}  // namespace ftd
