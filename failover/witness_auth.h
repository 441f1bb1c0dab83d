// The MAC inputs of witness requests and replies: a length-prefixed,
// canonical encoding (not the protobuf bytes, which are not canonical), with
// distinct prefixes so a request MAC can never be presented as a reply MAC.
#pragma once

#include <cstdint>
#include <span>

#include "failover/hmac.h"
#include "witness.pb.h"

namespace ftd {

Mac witness_request_mac(const witness::LeaseRequest& r, std::span<const uint8_t> key);
Mac witness_reply_mac(const witness::LeaseReply& r, std::span<const uint8_t> key);
bool witness_mac_ok(const std::string& mac, const Mac& expected);

}  // namespace ftd
