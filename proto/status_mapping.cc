#include "proto/status_mapping.h"

namespace ftd {

grpc::Status to_grpc_status(const Error& e) {
  using C = grpc::StatusCode;
  C code = C::INTERNAL;
  switch (e.code) {
    case ErrorCode::kInvalidArgument:
      code = C::INVALID_ARGUMENT;
      break;
    case ErrorCode::kNotFound:
      code = C::NOT_FOUND;
      break;
    case ErrorCode::kCorrupt:
      code = C::DATA_LOSS;
      break;
    case ErrorCode::kTimeout:
      code = C::DEADLINE_EXCEEDED;
      break;
    case ErrorCode::kUnavailable:
      code = C::UNAVAILABLE;
      break;
    case ErrorCode::kFailedPrecondition:
      code = C::FAILED_PRECONDITION;
      break;
    case ErrorCode::kUnimplemented:
      code = C::UNIMPLEMENTED;
      break;
    case ErrorCode::kResourceExhausted:
      code = C::RESOURCE_EXHAUSTED;
      break;
    case ErrorCode::kIo:
    case ErrorCode::kInternal:
      break;
  }
  return {code, e.message};
}

v1::VmState to_proto(VmState state) {
  switch (state) {
    case VmState::kStopped:
      return v1::VM_STATE_STOPPED;
    case VmState::kSyncing:
      return v1::VM_STATE_SYNCING;
    case VmState::kProtected:
      return v1::VM_STATE_PROTECTED;
    case VmState::kDegraded:
      return v1::VM_STATE_DEGRADED;
    case VmState::kUnprotected:
      return v1::VM_STATE_UNPROTECTED;
    case VmState::kWaiting:
      return v1::VM_STATE_WAITING;
    case VmState::kActivating:
      return v1::VM_STATE_ACTIVATING;
    case VmState::kActive:
      return v1::VM_STATE_ACTIVE;
    case VmState::kFailed:
      return v1::VM_STATE_FAILED;
    case VmState::kFenced:
      return v1::VM_STATE_FENCED;
  }
  return v1::VM_STATE_UNSPECIFIED;
}

std::string_view state_name(v1::VmState state) {
  for (auto s : {VmState::kStopped, VmState::kSyncing, VmState::kProtected, VmState::kDegraded,
                 VmState::kUnprotected, VmState::kWaiting, VmState::kActivating, VmState::kActive,
                 VmState::kFailed, VmState::kFenced})
    if (to_proto(s) == state) return to_string(s);
  return "unknown";
}

}  // namespace ftd
