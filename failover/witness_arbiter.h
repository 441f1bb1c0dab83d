// Arbiter backed by ftd-witness: this side may run alone while it holds a
// valid lease. The lease is renewed by an own thread (every renew_interval)
// once wanted: from the start on a primary, after a successful `claim` on a
// secondary.
//
// Self-fencing guarantee: a grant of lease L is counted from the local
// steady time the request was *sent* (before the witness received it), and
// shortened for clock-rate drift and a margin:
//     valid_until = t_send + L·(1 − 2ρ) − margin
// so `current()` turns false before the witness's own lease (counted from
// receipt, ≥ t_send in real time) can expire and be granted to the other
// side. See docs/failover.md for the inequality.
//
// Thread contract: current() from any thread (never blocks on the network);
// claim() from one thread at a time; the destructor stops and joins the
// renewal thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "failover/arbiter.h"
#include "failover/hmac.h"
#include "witness.pb.h"

namespace ftd {

struct WitnessArbiterConfig {
  std::string address;  // ftd-witness host:port
  std::string vm;
  std::string holder;  // this side's name on the witness (selects the key there)
  Key key;
  std::chrono::milliseconds renew_interval{250};
  std::chrono::milliseconds rpc_timeout{200};
  double max_drift = 0.01;               // ρ: assumed bound on clock-rate error per clock
  std::chrono::milliseconds margin{50};  // time from current() to the last frame leaving
  bool hold_from_start = false;          // primary: acquire now and keep renewing
};

class WitnessArbiter final : public Arbiter {
 public:
  static Result<std::unique_ptr<WitnessArbiter>> create(WitnessArbiterConfig config);
  ~WitnessArbiter() override;

  std::string name() const override { return "witness"; }
  ArbiterVerdict current() const override;
  Result<ArbiterVerdict> claim(std::chrono::milliseconds timeout) override;
  // Sends alone=true from now on (sticky at the witness); recorded once a
  // grant echoes it.
  Result<ArbiterVerdict> mark_alone(std::chrono::milliseconds timeout) override;
  // Sends release=true and stops renewing; current() says not held from the call on.
  Status release_for_handover(std::chrono::milliseconds timeout) override;
  void hold_again() override;
  // Term arithmetic: the witness gives another holder a new term, and gives
  // us at most one new term once our released lease ran out (the same term
  // if it restarted meanwhile). So a regained term ≤ released term + 1 means
  // nobody else held the VM in between.
  Result<bool> regain_after_handover(std::chrono::milliseconds timeout) override;
  // Sends rejoined=true (with alone=false) until a grant no longer carries the mark.
  void clear_alone() override;
  Result<ArbiterVerdict> claim_for_handover(std::chrono::milliseconds timeout) override {
    return claim(timeout);
  }

  // One Acquire round trip now (also what the renewal thread does). An
  // Error only when the witness misbehaves (garbage, forged or
  // inconsistent reply) or refuses our credentials.
  Result<ArbiterVerdict> acquire_once();

  class Rpc;

 private:
  explicit WitnessArbiter(WitnessArbiterConfig config, std::unique_ptr<Rpc> rpc);
  void renew_loop();
  // A signed LeaseRequest for this holder (fresh nonce, returned in `nonce`).
  Result<witness::LeaseRequest> signed_request(bool release, uint64_t& nonce) FTD_EXCLUDES(mu_);

  const WitnessArbiterConfig config_;
  std::unique_ptr<Rpc> rpc_;
  Mutex rpc_mu_;  // one request in flight: grants are applied in send order

  mutable Mutex mu_;
  CondVar cv_;
  bool stop_ FTD_GUARDED_BY(mu_) = false;
  bool want_ FTD_GUARDED_BY(mu_) = false;
  std::optional<std::chrono::steady_clock::time_point> valid_until_ FTD_GUARDED_BY(mu_);
  uint64_t term_ FTD_GUARDED_BY(mu_) = 0;  // highest term seen from the witness
  uint64_t held_term_ FTD_GUARDED_BY(mu_) = 0;
  bool superseded_ FTD_GUARDED_BY(mu_) = false;
  bool alone_ FTD_GUARDED_BY(mu_) = false;           // asked the witness to mark us alone
  bool alone_recorded_ FTD_GUARDED_BY(mu_) = false;  // a grant echoed the mark
  bool rejoined_ FTD_GUARDED_BY(mu_) = false;        // asked the witness to clear the mark
  uint64_t released_term_ FTD_GUARDED_BY(mu_) = 0;   // held_term_ at release_for_handover
  std::optional<std::chrono::milliseconds> retry_after_ FTD_GUARDED_BY(mu_);  // refusal's remaining
  std::string last_problem_ FTD_GUARDED_BY(mu_) = "never granted";
  std::thread renewer_;
};

}  // namespace ftd
