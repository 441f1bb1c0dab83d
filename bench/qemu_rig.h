// One protected real-QEMU guest, everything in this process: the primary
// guest QEMU (RAM on a shared memfd) with its NIC on the output-commit proxy,
// a SecondaryVm behind a real gRPC server on 127.0.0.1 whose replica lives in
// /dev/shm, and a standby QEMU prelaunched on that replica with its NIC on a
// pass-through proxy. Both proxies' taps sit on a bridge inside a network
// namespace of our own, where the benchmark pings the guest from.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "bench/qemu_pinger.h"
#include "bench/qemu_probe_engine.h"
#include "bench/qemu_serial_tail.h"
#include "checkpoint/pipeline.h"
#include "net/netns.h"
#include "net/network_proxy.h"
#include "primary/replication_client.h"
#include "qemu/network_gate.h"
#include "qemu/qemu_activator.h"
#include "qemu/qmp_engine.h"
#include "secondary/replication_service.h"
#include "secondary/secondary_vm.h"

namespace ftd::bench {

using Clock = std::chrono::steady_clock;

struct RigConfig {
  std::string guest_dir;  // vmlinuz + initrd.img
  uint64_t memory_mib = 128;
  std::string append;  // guest kernel command line
  EpochPolicy epochs = EpochPolicy::fixed(std::chrono::milliseconds(50));
  unsigned scan_threads = 2;
  std::string tag;                           // unique per rig (names of files, namespace)
  TrackerKind tracker = TrackerKind::kScan;  // dirty tracker QmpEngine must use
  std::string initrd = "initrd.img";         // in guest_dir (initrd-iperf.img: with iperf3)
};

inline constexpr const char* kGuestIp = "10.77.0.2";
inline constexpr const char* kGuestCidr = "10.77.0.2/24";
inline constexpr const char* kHostCidr = "10.77.0.1/24";

// Acks of real checkpoints (epoch > 0) as they arrive.
struct AckLog {
  std::mutex mu;
  std::optional<Clock::time_point> first_checkpoint_ack;
};

class Rig {
 public:
  static Result<std::unique_ptr<Rig>> create(RigConfig config);
  class Key {  // only create() can make one: setup() must run before a Rig is used
    friend class Rig;
    Key() = default;
  };
  Rig(Key, RigConfig config) : config_(std::move(config)) {}
  ~Rig();
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  // Launches the primary QEMU and waits for FTD-GUEST-READY; returns seconds.
  Result<double> boot(std::chrono::seconds timeout);
  // Starts protection: QmpEngine + pipeline + gRPC client; returns once the
  // initial sync is acknowledged (seconds from start).
  Result<double> protect();
  // Waits until the pipeline lags at most one epoch behind after the sync.
  bool wait_steady(double timeout_s, double& waited_s);
  // Stops protection and kills the primary as in a host loss (QEMU and tap gone).
  void lose_primary();
  Result<ActivationReport> failover() { return vm_->failover(); }

  CheckpointPipeline& pipeline() { return *pipeline_; }
  QmpProbe& probe() { return *probe_; }
  QmpEngine& engine() { return *engine_; }
  SerialTail& primary_serial() { return *primary_tail_; }
  const std::string& standby_serial_path() const { return standby_config_.serial_log_path; }
  QemuActivator& activator() { return *activator_; }
  SecondaryVm& secondary() { return *vm_; }
  // The primary NIC's output-commit proxy (it holds output from the start;
  // set_passthrough() before protect() to measure the guest unprotected).
  NetworkGate& gate() { return *gate_; }
  net::NetNamespace& netns() { return ns_; }
  const RigConfig& config() const { return config_; }
  // The rig's machine definition for another QEMU of the same guest named
  // `name` (its sockets and logs in the rig's directory).
  QemuConfig guest_config(const std::string& name) const;
  // A tap on the rig's bridge, in its namespace (for another QEMU's NIC proxy).
  Result<net::TapDevice> open_tap(const std::string& name);

 private:
  Status setup();

  RigConfig config_;
  std::string dir_;          // sockets, logs
  std::string replica_dir_;  // /dev/shm
  QemuConfig primary_config_, standby_config_;
  net::NetNamespace ns_;
  net::Bridge bridge_;
  std::unique_ptr<NetworkGate> gate_;   // the primary NIC's proxy as output gate
  QemuActivator* activator_ = nullptr;  // owned by vm_; owns the standby NIC's proxy
  std::unique_ptr<SecondaryVm> vm_;
  std::unique_ptr<ReplicationService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::optional<QemuProcess> primary_;  // until protect() hands it to the engine
  std::unique_ptr<SerialTail> primary_tail_;
  std::unique_ptr<QmpEngine> engine_;
  std::unique_ptr<QmpProbe> probe_;
  std::unique_ptr<ReplicationClient> client_;
  std::unique_ptr<CheckpointPipeline> pipeline_;
  AckLog acks_;
};

// Polls `pred` every 5 ms until it holds or `timeout_s` passes.
template <typename Pred>
bool wait_until(Pred pred, double timeout_s) {
  const auto t0 = Clock::now();
  while (!pred()) {
    if (std::chrono::duration<double>(Clock::now() - t0).count() > timeout_s) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace ftd::bench
