// The primary's end of the Replicate stream: connects (and reconnects) to the
// secondary, says Hello, reports Welcome/Ack/disconnect to a listener, and
// implements CheckpointTransport by cutting checkpoints into chunks.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "checkpoint/page_digests.h"
#include "checkpoint/transport.h"
#include "ftd.grpc.pb.h"
#include "security/channel_security.h"

namespace ftd {

class ReplicationClient : public CheckpointTransport {
 public:
  struct Listener {
    // `replica_pages`: the replica's page digests (empty: not sent or unusable).
    std::function<void(uint64_t replica_epoch, std::vector<PageDigest> replica_pages)> on_connected;
    std::function<void(uint64_t epoch, uint64_t apply_us)> on_ack;
    std::function<void(const std::string& why)> on_disconnected;
    std::function<void(const v1::HandoverReply& reply)> on_handover;  // may be empty
  };

  ReplicationClient(std::string target, v1::Hello hello, ChannelSecurity security = {},
                    size_t chunk_bytes = 1 << 20);
  ~ReplicationClient() override;

  // Starts the connect/read loop; callbacks run on its thread.
  void start(Listener listener);
  void stop();

  Status send(uint64_t epoch, std::span<const std::byte> encoded) override;
  // Planned migration: asks the secondary to take the VM over (the answer
  // comes through Listener::on_handover).
  Status send_handover(const v1::Handover& handover);

  bool connected() const { return connected_.load(); }
  const std::string& target() const { return target_; }
  // Why the last connection attempt failed or ended ("" while connected).
  std::string last_error() const;

 private:
  void run();
  // Reads PageDigests messages up to the Welcome (into `msg`); returns the
  // digests, or none if they do not cover exactly the Hello's pages.
  std::vector<PageDigest> read_digests(
      grpc::ClientReaderWriter<v1::PrimaryMessage, v1::SecondaryMessage>& stream,
      v1::SecondaryMessage& msg);
  void set_last_error(std::string why);

  const std::string target_;
  const v1::Hello hello_;
  const size_t chunk_bytes_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Replication::Stub> stub_;
  Listener listener_;

  std::mutex mu_;  // guards the current stream for writers
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::PrimaryMessage, v1::SecondaryMessage>> stream_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> stopping_{false};
  mutable std::mutex error_mu_;
  std::string last_error_;
  std::thread thread_;
};

// Channel/server keepalive settings shared by both ends, so a dead peer is
// noticed within seconds rather than at the TCP timeout. The timeout is
// generous because a loaded host (TCG guests, 2 cores) can stall a process
// for a second; a real host-loss detector is the heartbeat's job.
grpc::ChannelArguments replication_channel_args();
void apply_replication_server_args(grpc::ServerBuilder& builder);

}  // namespace ftd
