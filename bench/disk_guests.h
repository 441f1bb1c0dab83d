// The three configurations bench/disk_bench compares, each the same test
// guest (deploy/guest, TCG) with the same RAM, the same disk size and the
// same disk load (ftd.diskload), the disk a sparse raw image in /tmp:
//   plain        QEMU alone, virtio-blk on the raw image (unprotected)
//   ftd          a real protected pair (tests/e2e ProtectedPair: primary and
//                secondary ftd in their own network namespaces, real gRPC):
//                QEMU's write-blocking mirror into ftd's NBD server, each
//                epoch's writes applied to the replica disk with the RAM
//   qemu-mirror  QEMU's own blockdev-mirror, write-blocking, sync full, to a
//                plain NBD target: qemu-storage-daemon serving a raw file on
//                /dev/shm (where ftd's replica lives too); no ftd
// Each owns what it started and removes it on destruction.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/qemu_serial_tail.h"
#include "common/result.h"

namespace ftd::bench {

struct DiskGuestOptions {
  std::string guest_dir;  // vmlinuz + initrd.img
  int memory_mib = 128;
  int disk_mib = 64;
  int phase_s = 4;  // ftd.diskload=<disk_mib>:<phase_s>
  int epoch_ms = 50;
};

class DiskBenchGuest {
 public:
  virtual ~DiskBenchGuest() = default;
  // The guest's console, host-stamped.
  virtual const SerialTail& console() const = 0;
  // Checkpoint pauses over the next `ms` (ftd's Plan RPC); null when the
  // configuration takes no checkpoints.
  virtual nlohmann::json sample_pauses(unsigned /*ms*/) { return nullptr; }
  // Set-up times and settings, for the JSON.
  const nlohmann::json& setup() const { return setup_; }

 protected:
  nlohmann::json setup_ = nlohmann::json::object();
};

// Returns once the guest's load runs (and, for ftd and qemu-mirror, once the
// disk is mirrored: BLOCK_JOB_READY; ftd: status says the disk is protected).
Result<std::unique_ptr<DiskBenchGuest>> start_disk_guest(const std::string& config,
                                                         const DiskGuestOptions& options);

// The kernel command line's load knob, shared by the three.
std::string diskload_knob(const DiskGuestOptions& options);

}  // namespace ftd::bench
