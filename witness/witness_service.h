// The gRPC face of the witness: authenticates each request (HMAC under the
// holder's key, wall-clock timestamp within ±window, nonce never seen within
// that window), decides with the LeaseTable, persists new terms before
// answering, and signs the reply (covering the request nonce).
// Thread contract: gRPC calls Acquire from any thread; one mutex serialises
// decide → persist → commit, so two holders can never both be granted.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>

#include "common/mutex.h"
#include "failover/hmac.h"
#include "witness.grpc.pb.h"
#include "witness/lease_store.h"
#include "witness/lease_table.h"

namespace ftd::witness {

using KeyTable = std::map<std::string, Key>;  // holder → key
// "holder hexkey" per line; '#' comments.
Result<KeyTable> load_key_table(const std::string& path);

struct WitnessCounters {
  uint64_t granted = 0, renewed = 0, refused = 0, rejected = 0;
};

class WitnessService final : public Witness::Service {
 public:
  WitnessService(LeaseStore store, PersistedTable loaded, KeyTable keys,
                 std::chrono::milliseconds lease,
                 std::chrono::milliseconds replay_window = std::chrono::seconds(30));

  grpc::Status Acquire(grpc::ServerContext* ctx, const LeaseRequest* req,
                       LeaseReply* reply) override;

 private:
  grpc::Status authenticate(const LeaseRequest& req, const Key& key) FTD_REQUIRES(mu_);

  Mutex mu_;
  LeaseStore store_;
  LeaseTable table_ FTD_GUARDED_BY(mu_);
  const KeyTable keys_;
  const std::chrono::milliseconds replay_window_;
  // (holder, nonce) seen, by request timestamp, pruned past the window.
  std::multimap<uint64_t, std::pair<std::string, uint64_t>> nonces_by_time_ FTD_GUARDED_BY(mu_);
  std::set<std::pair<std::string, uint64_t>> nonces_ FTD_GUARDED_BY(mu_);
  WitnessCounters counters_ FTD_GUARDED_BY(mu_);
};

}  // namespace ftd::witness
