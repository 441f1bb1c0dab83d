#include "failover/heartbeat_packet.h"

#include <cstring>

namespace ftd {
namespace {

constexpr uint32_t kMagic = 0x42485446;  // "FTHB"
constexpr uint8_t kVersion = 1;
// magic, version, role, vm length, 5 × u64, then the name, then the MAC.
constexpr size_t kFixed = 4 + 1 + 1 + 2 + 5 * 8;

void put(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint64_t get(std::span<const uint8_t> in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{in[at + i]} << (8 * i);
  return v;
}

}  // namespace

std::string_view to_string(PeerRole role) {
  switch (role) {
    case PeerRole::kPrimary:
      return "primary";
    case PeerRole::kSecondary:
      return "secondary";
    case PeerRole::kActive:
      return "active";
    case PeerRole::kDegraded:
      return "degraded";
    case PeerRole::kFenced:
      return "fenced";
  }
  return "?";
}

std::vector<uint8_t> encode_heartbeat(const HeartbeatPacket& p, std::span<const uint8_t> key) {
  std::vector<uint8_t> out;
  out.reserve(kFixed + p.vm.size() + 32);
  put(out, kMagic, 4);
  put(out, kVersion, 1);
  put(out, static_cast<uint8_t>(p.role), 1);
  put(out, p.vm.size(), 2);
  for (uint64_t v : {p.epoch, p.boot_id, p.seq, p.echo_boot_id, p.echo_seq}) put(out, v, 8);
  out.insert(out.end(), p.vm.begin(), p.vm.end());
  Mac mac = hmac_sha256(key, out);
  out.insert(out.end(), mac.begin(), mac.end());
  return out;
}

Result<HeartbeatPacket> decode_heartbeat(std::span<const uint8_t> in,
                                         std::span<const uint8_t> key) {
  if (in.size() < kFixed + 32)
    return make_error(ErrorCode::kCorrupt, "short ({} bytes)", in.size());
  if (get(in, 0, 4) != kMagic) return make_error(ErrorCode::kCorrupt, "bad magic");
  if (get(in, 4, 1) != kVersion) return make_error(ErrorCode::kCorrupt, "bad version");
  const size_t name_len = get(in, 6, 2);
  if (name_len > kMaxVmName || in.size() != kFixed + name_len + 32)
    return make_error(ErrorCode::kCorrupt, "bad length ({} bytes, name {})", in.size(), name_len);
  // Authenticate before interpreting any field further.
  const auto body = in.first(kFixed + name_len);
  if (!mac_equal(hmac_sha256(key, body), in.subspan(body.size())))
    return make_error(ErrorCode::kFailedPrecondition, "bad MAC");
  HeartbeatPacket p;
  const uint8_t role = in[5];
  if (role < 1 || role > 5) return make_error(ErrorCode::kCorrupt, "bad role {}", role);
  p.role = static_cast<PeerRole>(role);
  p.epoch = get(in, 8, 8);
  p.boot_id = get(in, 16, 8);
  p.seq = get(in, 24, 8);
  p.echo_boot_id = get(in, 32, 8);
  p.echo_seq = get(in, 40, 8);
  p.vm.assign(reinterpret_cast<const char*>(in.data() + kFixed), name_len);
  if (p.boot_id == 0 || p.seq == 0) return make_error(ErrorCode::kCorrupt, "zero generation");
  return p;
}

}  // namespace ftd
