// What a secondary protects: the VM's name and shape, and where its replica lives.
#pragma once

#include <cstdint>
#include <string>

namespace ftd {

struct SecondaryVmConfig {
  std::string vm_name;
  uint64_t memory_bytes = 0;
  uint32_t page_size = 4096;
  uint64_t disk_bytes = 0;     // the replica disk <replica_dir>/<vm>.disk; 0: none
  std::string vm_spec_digest;  // the standby's VM spec (Hello.vm_spec_digest); "": built-in
  std::string replica_dir = "/dev/shm/ftd";
  // Threads that decompress and resolve each checkpoint (segmented payloads, codec.h).
  unsigned decode_threads = 2;
};

}  // namespace ftd
