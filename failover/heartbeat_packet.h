// The heartbeat wire format: a fixed little-endian layout authenticated with
// HMAC-SHA256 over everything before the MAC. Besides the sender's identity
// (VM, role, epoch, generation = boot id + sequence) a packet echoes the
// newest sequence it has received from us, so a packet proves it was made
// *after* we sent that sequence: a recording replayed later cannot fake life.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "failover/hmac.h"

namespace ftd {

enum class PeerRole : uint8_t {
  kPrimary = 1,    // protecting, output gated by acks
  kSecondary = 2,  // replicating, standby
  kActive = 3,     // secondary that activated its replica: runs the VM alone
  kDegraded = 4,   // primary running without protection
  kFenced = 5,     // primary that lost arbitration
};
std::string_view to_string(PeerRole role);

struct HeartbeatPacket {
  std::string vm;
  PeerRole role = PeerRole::kPrimary;
  uint64_t epoch = 0;         // sender's replication epoch (last shipped / applied)
  uint64_t boot_id = 0;       // random per process start: the generation
  uint64_t seq = 0;           // monotonic within boot_id, starts at 1
  uint64_t echo_boot_id = 0;  // receiver's generation we last heard (0: none)
  uint64_t echo_seq = 0;      // ... and its newest sequence
};

constexpr size_t kMaxVmName = 128;

std::vector<uint8_t> encode_heartbeat(const HeartbeatPacket& p, std::span<const uint8_t> key);
// kCorrupt for malformed input, kFailedPrecondition for a bad MAC.
Result<HeartbeatPacket> decode_heartbeat(std::span<const uint8_t> bytes,
                                         std::span<const uint8_t> key);

}  // namespace ftd
