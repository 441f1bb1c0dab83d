#include "witness/witness_service.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "failover/witness_auth.h"

namespace ftd::witness {
namespace {

uint64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<KeyTable> load_key_table(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot read key table {}", path);
  KeyTable keys;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string holder, hex;
    if (!(ls >> holder >> hex))
      return make_error(ErrorCode::kInvalidArgument, "{}:{}: want 'holder hexkey'", path, n);
    auto key = parse_hex_key(hex);
    if (!key) return std::unexpected(key.error().with_context(fmt::format("{}:{}", path, n)));
    keys[holder] = std::move(*key);
  }
  if (keys.empty()) return make_error(ErrorCode::kInvalidArgument, "{}: no keys", path);
  return keys;
}

WitnessService::WitnessService(LeaseStore store, PersistedTable loaded, KeyTable keys,
                               std::chrono::milliseconds lease,
                               std::chrono::milliseconds replay_window)
    : store_(std::move(store)),
      table_(std::move(loaded), Clock::now(), lease),
      keys_(std::move(keys)),
      replay_window_(replay_window) {}

grpc::Status WitnessService::authenticate(const LeaseRequest& req, const Key& key) {
  if (!witness_mac_ok(req.mac(), witness_request_mac(req, key)))
    return {grpc::StatusCode::UNAUTHENTICATED, "bad MAC"};
  const uint64_t now = unix_ms();
  const uint64_t window = replay_window_.count();
  if (req.timestamp_ms() + window < now || req.timestamp_ms() > now + window)
    return {grpc::StatusCode::UNAUTHENTICATED,
            fmt::format("timestamp {} ms off the witness clock (window ±{} ms)",
                        static_cast<int64_t>(req.timestamp_ms() - now), window)};
  while (!nonces_by_time_.empty() && nonces_by_time_.begin()->first + window < now) {
    nonces_.erase(nonces_by_time_.begin()->second);
    nonces_by_time_.erase(nonces_by_time_.begin());
  }
  auto id = std::make_pair(req.holder(), req.nonce());
  if (!nonces_.insert(id).second) return {grpc::StatusCode::UNAUTHENTICATED, "replayed nonce"};
  nonces_by_time_.emplace(req.timestamp_ms(), id);
  return grpc::Status::OK;
}

grpc::Status WitnessService::Acquire(grpc::ServerContext* ctx, const LeaseRequest* req,
                                     LeaseReply* reply) {
  MutexLock lock(mu_);
  auto key = keys_.find(req->holder());
  if (key == keys_.end() || req->vm().empty()) {
    ++counters_.rejected;
    spdlog::warn("witness_reject peer={} holder='{}' reason=unknown-holder", ctx->peer(),
                 req->holder());
    return {grpc::StatusCode::UNAUTHENTICATED, "unknown holder"};
  }
  if (auto s = authenticate(*req, key->second); !s.ok()) {
    ++counters_.rejected;
    spdlog::warn("witness_reject peer={} holder={} reason='{}'", ctx->peer(), req->holder(),
                 s.error_message());
    return s;
  }
  const auto now = Clock::now();
  if (req->release()) {
    // Not persisted: expiry times never are (a restarted witness renews
    // every lease once), and releasing only makes the lease shorter.
    const bool released = table_.release(req->vm(), req->holder(), now);
    spdlog::info("witness_release vm={} holder={} released={}", req->vm(), req->holder(), released);
    const PersistedLease held = table_.lease_of(req->vm());
    reply->set_granted(false);
    reply->set_term(held.term);
    reply->set_holder(held.holder);
    reply->set_reason(released ? "released" : "not the holder: nothing released");
    reply->set_request_nonce(req->nonce());
    const Mac mac = witness_reply_mac(*reply, key->second);
    reply->set_mac(std::string(mac.begin(), mac.end()));
    return grpc::Status::OK;
  }
  LeaseDecision d = table_.decide(req->vm(), req->holder(), req->alone(), now, req->rejoined());
  if (d.must_persist) {
    // Durable before anyone hears of the term: a restart must not re-grant it.
    if (auto s = store_.save(table_.persisted_with(req->vm(), d)); !s) {
      spdlog::error("witness_persist_failed vm={} error='{}'", req->vm(), s.error().to_string());
      return {grpc::StatusCode::UNAVAILABLE, "cannot persist lease: " + s.error().message};
    }
  }
  table_.commit(req->vm(), d, now);
  if (d.granted) {
    ++(d.new_term ? counters_.granted : counters_.renewed);
    if (d.must_persist)
      spdlog::info("witness_grant vm={} holder={} term={} alone={} rejoined={}", req->vm(),
                   d.holder, d.term, d.alone, req->rejoined());
  } else {
    ++counters_.refused;
  }
  reply->set_granted(d.granted);
  reply->set_term(d.term);
  reply->set_holder(d.holder);
  reply->set_lease_ms(d.granted ? table_.lease().count() : 0);
  reply->set_remaining_ms(d.remaining.count());
  reply->set_reason(d.reason);
  reply->set_alone(d.alone);
  reply->set_request_nonce(req->nonce());
  const Mac mac = witness_reply_mac(*reply, key->second);
  reply->set_mac(std::string(mac.begin(), mac.end()));
  return grpc::Status::OK;
}

}  // namespace ftd::witness
