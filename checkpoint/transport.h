// How encoded checkpoints leave the primary. The gRPC client implements it
// (primary/replication_client.h); tests may use an in-process double.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "common/result.h"

namespace ftd {

class CheckpointTransport {
 public:
  virtual ~CheckpointTransport() = default;
  // Sends one whole encoded checkpoint; blocks under flow control. An error
  // means the stream is broken and the checkpoint may not have arrived.
  virtual Status send(uint64_t epoch, std::span<const std::byte> encoded) = 0;
};

// Something that holds guest output until checkpoints are acknowledged
// (OutputCommitBuffer users: the network proxy, the synthetic message log).
class OutputGate {
 public:
  struct Stats {
    uint64_t held = 0;
    uint64_t released = 0;
    uint64_t dropped = 0;
    // How long released items were held (recent window): the added latency.
    uint64_t hold_samples = 0;
    double hold_p50_us = 0, hold_p99_us = 0;
  };
  virtual ~OutputGate() = default;
  virtual void advance_epoch() = 0;         // called while the guest is paused
  virtual void commit(uint64_t epoch) = 0;  // the secondary applied `epoch`
  virtual void set_passthrough() = 0;       // protection ended: let output flow
  // Hold output from now on (no-op if already holding). The pipeline calls
  // it at every capture, so a VM re-protected while it ran unprotected keeps
  // its output flowing through the initial sync (no replica could take over
  // yet) and holds it from the first checkpoint that makes the replica usable.
  virtual void hold() = 0;
  // Failover decided the primary runs alone: release without acks while
  // `allowed()` holds, asked before every release; nullptr: hold again.
  virtual void set_release_unacked(std::function<bool()> allowed) = 0;
  // Output arrived and is held: `listener` runs on the producer's thread,
  // outside the gate's locks (the output-driven epoch policy wakes on it).
  virtual void set_output_listener(std::function<void()> listener) = 0;
  virtual void fence() = 0;  // lost arbitration: drop held output, never release again
  virtual Stats stats() const = 0;
};

}  // namespace ftd
