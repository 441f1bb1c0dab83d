#include "secondary/hello_check.h"

#include <fmt/format.h>

namespace ftd {

grpc::Status check_hello(const v1::Hello& h, const SecondaryVmConfig& config_) {
  if (h.protocol_version() != 1)
    return {grpc::StatusCode::FAILED_PRECONDITION,
            fmt::format("protocol version {} not supported (this secondary speaks 1)",
                        h.protocol_version())};
  if (h.vm_name() != config_.vm_name)
    return {grpc::StatusCode::NOT_FOUND,
            fmt::format("this secondary protects VM '{}', not '{}'", config_.vm_name, h.vm_name())};
  if (h.memory_bytes() != config_.memory_bytes || h.page_size() != config_.page_size)
    return {
        grpc::StatusCode::FAILED_PRECONDITION,
        fmt::format("VM '{}' geometry mismatch: primary {} bytes / {} B pages, secondary {} / {}",
                    h.vm_name(), h.memory_bytes(), h.page_size(), config_.memory_bytes,
                    config_.page_size)};
  if (h.disk_bytes() != config_.disk_bytes)
    return {grpc::StatusCode::FAILED_PRECONDITION,
            fmt::format("VM '{}' disk size mismatch: primary's disk is {} bytes, this secondary's "
                        "replica disk is {} bytes (--disk-mib)",
                        h.vm_name(), h.disk_bytes(), config_.disk_bytes)};
  if (h.vm_spec_digest() != config_.vm_spec_digest) {
    auto name = [](const std::string& d) { return d.empty() ? std::string("none") : d; };
    return {grpc::StatusCode::FAILED_PRECONDITION,
            fmt::format("VM '{}' spec mismatch: primary's VM spec digest {}, this secondary's {} "
                        "(both hosts must run the same --vm-spec/--qemu-arg; none = ftd's "
                        "built-in guest)",
                        h.vm_name(), name(h.vm_spec_digest()), name(config_.vm_spec_digest))};
  }
  return grpc::Status::OK;
}

}  // namespace ftd
