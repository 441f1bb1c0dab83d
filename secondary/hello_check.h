// Does a primary's Hello describe the VM this secondary protects? Refused
// before any checkpoint byte, with a reason naming both sides' values:
// protocol, VM name, RAM geometry, disk size, VM spec digest.
#pragma once

#include <grpcpp/support/status.h>

#include "ftd.pb.h"
#include "secondary/secondary_vm_config.h"

namespace ftd {

grpc::Status check_hello(const v1::Hello& hello, const SecondaryVmConfig& config);

}  // namespace ftd
