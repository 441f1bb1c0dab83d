// One protected VM on the primary host: its engine, the replication stream to
// the secondary, the checkpoint pipeline and the output gates, wired together.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "checkpoint/guest_engine.h"
#include "checkpoint/pipeline.h"
#include "ftd.pb.h"
#include "primary/replication_client.h"

namespace ftd {

struct PrimaryVmConfig {
  std::string vm_name;
  std::string peer;  // secondary's replication address, host:port
  PipelineConfig pipeline;
};

class PrimaryVm {
 public:
  // Gates must outlive nothing: the VM owns them, the engine may push into them.
  static Result<std::unique_ptr<PrimaryVm>> create(PrimaryVmConfig config,
                                                   std::vector<std::unique_ptr<OutputGate>> gates,
                                                   std::unique_ptr<GuestEngine> engine);
  ~PrimaryVm();

  const std::string& name() const { return config_.vm_name; }
  Status protect();    // connect and start checkpointing (idempotent)
  Status unprotect();  // stop checkpointing; output flows unheld
  v1::VmStatus status() const;
  GuestEngine& engine() { return *engine_; }

 private:
  PrimaryVm(PrimaryVmConfig config, std::vector<std::unique_ptr<OutputGate>> gates,
            std::unique_ptr<GuestEngine> engine);

  const PrimaryVmConfig config_;
  std::vector<std::unique_ptr<OutputGate>> gates_;
  std::unique_ptr<GuestEngine> engine_;
  std::unique_ptr<ReplicationClient> client_;
  std::unique_ptr<CheckpointPipeline> pipeline_;
  mutable std::mutex mu_;
  bool protected_ = false;
  bool unprotected_ = false;
  std::string last_error_;
};

}  // namespace ftd
