#include "failover/witness_arbiter.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "failover/witness_auth.h"
#include "witness.grpc.pb.h"

namespace ftd {
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class WitnessArbiter::Rpc {
 public:
  explicit Rpc(const std::string& address)
      : stub_(witness::Witness::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {}
  grpc::Status call(const witness::LeaseRequest& req, witness::LeaseReply* reply,
                    milliseconds timeout) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    return stub_->Acquire(&ctx, req, reply);
  }

 private:
  std::unique_ptr<witness::Witness::Stub> stub_;
};

Result<std::unique_ptr<WitnessArbiter>> WitnessArbiter::create(WitnessArbiterConfig config) {
  if (config.address.empty() || config.vm.empty() || config.holder.empty())
    return make_error(ErrorCode::kInvalidArgument, "witness arbiter: address, vm, holder needed");
  if (config.key.size() < 16)
    return make_error(ErrorCode::kInvalidArgument, "witness arbiter: no key");
  if (config.max_drift < 0 || config.max_drift >= 0.25)
    return make_error(ErrorCode::kInvalidArgument, "witness arbiter: drift bound out of range");
  auto rpc = std::make_unique<Rpc>(config.address);
  return std::unique_ptr<WitnessArbiter>(new WitnessArbiter(std::move(config), std::move(rpc)));
}

WitnessArbiter::WitnessArbiter(WitnessArbiterConfig config, std::unique_ptr<Rpc> rpc)
    : config_(std::move(config)), rpc_(std::move(rpc)) {
  want_ = config_.hold_from_start;
  renewer_ = std::thread([this] { renew_loop(); });
}

WitnessArbiter::~WitnessArbiter() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  renewer_.join();
}

ArbiterVerdict WitnessArbiter::current() const {
  const auto now = Clock::now();
  MutexLock lock(mu_);
  ArbiterVerdict v{.term = term_, .superseded = superseded_};
  if (valid_until_ && now < *valid_until_) {
    v.may_run_alone = true;
    v.alone_recorded = alone_recorded_;
    v.evidence =
        fmt::format("witness lease term={} holder={} valid_for_ms={}", held_term_, config_.holder,
                    std::chrono::duration_cast<milliseconds>(*valid_until_ - now).count());
    if (alone_recorded_) v.evidence += " alone=recorded";
  } else {
    v.evidence = fmt::format("witness lease not held (term={}): {}", term_, last_problem_);
  }
  return v;
}

Result<witness::LeaseRequest> WitnessArbiter::signed_request(bool release, uint64_t& nonce) {
  witness::LeaseRequest req;
  req.set_vm(config_.vm);
  req.set_holder(config_.holder);
  {
    MutexLock lock(mu_);
    req.set_alone(alone_);
    req.set_rejoined(rejoined_);
  }
  req.set_release(release);
  req.set_timestamp_ms(
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  FTD_ASSIGN_OR_RETURN(const uint64_t fresh, random_u64());
  nonce = fresh;
  req.set_nonce(nonce);
  const Mac mac = witness_request_mac(req, config_.key);
  req.set_mac(std::string(mac.begin(), mac.end()));
  return req;
}

Status WitnessArbiter::release_for_handover(milliseconds timeout) {
  MutexLock rpc_lock(rpc_mu_);
  {
    MutexLock lock(mu_);
    want_ = false;
    released_term_ = held_term_;
    valid_until_.reset();  // from now on we do not hold it, whatever the witness answers
    last_problem_ = "released for a planned migration";
  }
  uint64_t nonce = 0;
  FTD_ASSIGN_OR_RETURN(witness::LeaseRequest req, signed_request(true, nonce));
  witness::LeaseReply reply;
  const grpc::Status st = rpc_->call(req, &reply, timeout);
  if (!st.ok())
    return make_error(ErrorCode::kUnavailable, "witness {}: release: {}", config_.address,
                      st.error_message());
  if (!witness_mac_ok(reply.mac(), witness_reply_mac(reply, config_.key)) ||
      reply.request_nonce() != nonce)
    return make_error(ErrorCode::kCorrupt, "witness {}: release reply not authenticated",
                      config_.address);
  if (reply.reason() != "released")
    return make_error(ErrorCode::kFailedPrecondition, "witness {} did not release: {}",
                      config_.address, reply.reason());
  spdlog::info("witness_lease_released vm={} holder={} term={}", config_.vm, config_.holder,
               reply.term());
  return ok();
}

void WitnessArbiter::hold_again() {
  {
    MutexLock lock(mu_);
    want_ = true;
  }
  cv_.notify_all();
}

Result<ArbiterVerdict> WitnessArbiter::acquire_once() {
  MutexLock rpc_lock(rpc_mu_);
  uint64_t nonce = 0;
  FTD_ASSIGN_OR_RETURN(witness::LeaseRequest req, signed_request(false, nonce));

  // Taken before the request leaves: the witness counts the lease from a
  // later instant, so our validity ends first (self-fencing).
  const auto t_send = Clock::now();
  witness::LeaseReply reply;
  const grpc::Status st = rpc_->call(req, &reply, config_.rpc_timeout);
  if (!st.ok()) {
    const std::string problem = fmt::format("witness {}: {} ({})", config_.address,
                                            st.error_message(), static_cast<int>(st.error_code()));
    {
      MutexLock lock(mu_);
      last_problem_ = problem;
    }
    // Our key/identity refused, or a server that is not a witness: the
    // arbiter is broken, not merely unreachable.
    if (st.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        st.error_code() == grpc::StatusCode::UNIMPLEMENTED ||
        st.error_code() == grpc::StatusCode::INTERNAL)
      return make_error(ErrorCode::kFailedPrecondition, "{}", problem);
    return current();  // unreachable / timed out: not granted, lease runs out on its own
  }
  auto misbehaved = [&](std::string what) -> Result<ArbiterVerdict> {
    MutexLock lock(mu_);
    last_problem_ = fmt::format("witness {} misbehaves: {}", config_.address, what);
    return make_error(ErrorCode::kCorrupt, "{}", last_problem_);
  };
  if (!witness_mac_ok(reply.mac(), witness_reply_mac(reply, config_.key)))
    return misbehaved("reply not authenticated (bad MAC)");
  if (reply.request_nonce() != nonce) return misbehaved("reply is for another request");
  uint64_t known_term = 0;
  {
    MutexLock lock(mu_);
    known_term = term_;
  }
  if (reply.term() < known_term)
    return misbehaved(fmt::format("term went backwards ({} after {})", reply.term(), known_term));
  if (reply.granted() &&
      (reply.holder() != config_.holder || reply.lease_ms() == 0 || reply.term() == 0))
    return misbehaved("inconsistent grant");

  MutexLock lock(mu_);
  term_ = reply.term();
  if (reply.granted()) {
    const double lease = static_cast<double>(reply.lease_ms());
    const auto valid = milliseconds(static_cast<int64_t>(lease * (1.0 - 2.0 * config_.max_drift))) -
                       config_.margin;
    if (valid.count() <= 0) {
      last_problem_ = fmt::format("lease {} ms too short for margin", reply.lease_ms());
    } else {
      if (reply.term() != held_term_)
        spdlog::info("witness_lease_acquired vm={} holder={} term={} lease_ms={}", config_.vm,
                     config_.holder, reply.term(), reply.lease_ms());
      held_term_ = reply.term();
      if (alone_recorded_ && !reply.alone())
        spdlog::warn("witness_alone_cleared vm={} holder={} term={} why=\"peer consistent again\"",
                     config_.vm, config_.holder, reply.term());
      alone_recorded_ = reply.alone();
      if (!reply.alone()) rejoined_ = false;
      retry_after_.reset();
      valid_until_ = t_send + valid;
      superseded_ = false;
      want_ = true;  // keep renewing what we hold
    }
  } else {
    last_problem_ = fmt::format("refused: {}", reply.reason());
    retry_after_ = milliseconds(reply.remaining_ms());
    // Someone else holds a term newer than ours: we lost for good.
    if (reply.holder() != config_.holder && reply.term() > held_term_ &&
        (held_term_ > 0 || config_.hold_from_start))
      superseded_ = true;
  }
  cv_.notify_all();
  lock.unlock();
  return current();
}

Result<ArbiterVerdict> WitnessArbiter::claim(milliseconds timeout) {
  // want_ is set only by a grant: a failed claim must not leave a
  // background renewer that takes the lease later behind the decision's back.
  const auto deadline = Clock::now() + timeout;
  while (true) {
    FTD_ASSIGN_OR_RETURN(ArbiterVerdict v, acquire_once());
    if (v.may_run_alone || v.superseded || Clock::now() >= deadline) return v;
    // Refused while the other side's lease runs: ask again when it ends
    // (the witness said how long), or shortly if it did not answer.
    MutexLock lock(mu_);
    auto wait = config_.renew_interval / 2;
    if (retry_after_) wait = std::min(wait, *retry_after_ + milliseconds(2));
    cv_.wait_until(mu_, std::min(deadline, Clock::now() + wait));
    if (stop_) return current();
  }
}

Result<bool> WitnessArbiter::regain_after_handover(milliseconds timeout) {
  uint64_t released = 0;
  {
    MutexLock lock(mu_);
    released = released_term_;
  }
  FTD_ASSIGN_OR_RETURN(ArbiterVerdict v, claim(timeout));
  const bool unshared = v.may_run_alone && !v.superseded && released > 0 && v.term <= released + 1;
  spdlog::warn("witness_regain vm={} holder={} released_term={} term={} granted={} unshared={}",
               config_.vm, config_.holder, released, v.term, v.may_run_alone, unshared);
  // Granted, but someone held it meanwhile: this side fences, and must not
  // sit on a lease the peer (if it lives) needs.
  if (!unshared && v.may_run_alone) (void)release_for_handover(timeout);
  return unshared;
}

void WitnessArbiter::clear_alone() {
  {
    MutexLock lock(mu_);
    if (alone_ || alone_recorded_) rejoined_ = true;
    alone_ = false;
  }
  cv_.notify_all();
}

Result<ArbiterVerdict> WitnessArbiter::mark_alone(milliseconds timeout) {
  {
    MutexLock lock(mu_);
    alone_ = true;
    rejoined_ = false;
  }
  // One round trip, bounded by rpc_timeout (≤ timeout in practice); the
  // renewer keeps sending the mark, so a lost reply is repaired by the next.
  (void)timeout;
  return acquire_once();
}

void WitnessArbiter::renew_loop() {
  MutexLock lock(mu_);
  while (!stop_) {
    if (want_) {
      lock.unlock();  // the RPC must not hold the state lock (current() stays cheap)
      auto r = acquire_once();
      if (!r)
        spdlog::warn("witness_renew_failed vm={} error='{}'", config_.vm, r.error().to_string());
      lock.lock();
    }
    const auto next = Clock::now() + config_.renew_interval;
    while (!stop_ && Clock::now() < next) cv_.wait_until(mu_, next);
  }
}

}  // namespace ftd
