// One protected VM on the secondary host: its replica, the state of the
// replication stream feeding it, and failover (activation) of the replica.
//
// Split-brain guard: once failed over, the VM never accepts a primary again;
// only one primary stream feeds the replica at a time (a newer connection
// replaces an older one, e.g. a restarted primary whose old TCP is half dead).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "failover/activator.h"
#include "ftd.grpc.pb.h"
#include "secondary/replica_store.h"

namespace ftd {

struct SecondaryVmConfig {
  std::string vm_name;
  uint64_t memory_bytes = 0;
  uint32_t page_size = 4096;
  std::string replica_dir = "/dev/shm/ftd";
};

class SecondaryVm {
 public:
  static Result<std::unique_ptr<SecondaryVm>> open(SecondaryVmConfig config,
                                                   std::unique_ptr<Activator> activator);

  const std::string& name() const { return config_.vm_name; }
  const ReplicaStore& replica() const { return replica_; }

  // Serves one Replicate stream until it ends; returns the status to send back.
  grpc::Status serve(grpc::ServerContext* context,
                     grpc::ServerReaderWriter<v1::SecondaryMessage, v1::PrimaryMessage>* stream);

  Result<ActivationReport> failover();
  v1::VmStatus status() const;

 private:
  SecondaryVm(SecondaryVmConfig config, ReplicaStore replica, std::unique_ptr<Activator> activator)
      : config_(std::move(config)),
        replica_(std::move(replica)),
        activator_(std::move(activator)) {}
  grpc::Status check_hello(const v1::Hello& hello) const;

  const SecondaryVmConfig config_;
  mutable std::mutex mu_;  // guards everything below; held while applying
  ReplicaStore replica_;
  std::unique_ptr<Activator> activator_;
  grpc::ServerContext* active_stream_ = nullptr;
  uint64_t stream_generation_ = 0;
  bool failed_over_ = false;
  ActivationReport activation_;
  std::string last_error_;
  std::string peer_;
  uint64_t last_apply_us_ = 0;
  uint64_t bytes_received_ = 0;
  std::deque<std::chrono::steady_clock::time_point> applied_times_;
};

}  // namespace ftd
