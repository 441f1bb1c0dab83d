#include "failover/witness_auth.h"

#include <string>

namespace ftd {
namespace {

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_str(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}
Mac mac_of(const std::string& data, std::span<const uint8_t> key) {
  return hmac_sha256(key, std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

}  // namespace

Mac witness_request_mac(const witness::LeaseRequest& r, std::span<const uint8_t> key) {
  std::string d = "ftd-witness-request-v3";
  put_str(d, r.vm());
  put_str(d, r.holder());
  put_u64(d, r.timestamp_ms());
  put_u64(d, r.nonce());
  d.push_back(r.alone() ? 1 : 0);
  d.push_back(r.release() ? 1 : 0);
  d.push_back(r.rejoined() ? 1 : 0);
  return mac_of(d, key);
}

Mac witness_reply_mac(const witness::LeaseReply& r, std::span<const uint8_t> key) {
  std::string d = "ftd-witness-reply-v1";
  d.push_back(r.granted() ? 1 : 0);
  put_u64(d, r.term());
  put_str(d, r.holder());
  put_u64(d, r.lease_ms());
  put_u64(d, r.remaining_ms());
  put_str(d, r.reason());
  put_u64(d, r.request_nonce());
  d.push_back(r.alone() ? 1 : 0);
  return mac_of(d, key);
}

bool witness_mac_ok(const std::string& mac, const Mac& expected) {
  return mac_equal(std::span(reinterpret_cast<const uint8_t*>(mac.data()), mac.size()), expected);
}

}  // namespace ftd
