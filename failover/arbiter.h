// Who may run a protected VM alone when the two sides lose each other.
// The secondary wants to activate its replica; the primary wants to release
// output without acks (run unprotected). An Arbiter makes these mutually
// exclusive: at most one side of a pair ever gets `may_run_alone`.
// Implementations: WitnessArbiter (lease with a term from ftd-witness on a
// third host), CorosyncArbiter (quorum through libquorum/libvotequorum),
// NoArbiter (automatic failover off, with the reason).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/result.h"

namespace ftd {

struct ArbiterVerdict {
  bool may_run_alone = false;  // this side may activate / release unacked output
  uint64_t term = 0;           // lease term, or quorum ring id; grows monotonically
  std::string evidence;        // one line for the decision log and `ftctl status`
  // Another side holds a newer term / the quorum: this side lost arbitration
  // for good and must fence itself (added for the witness arbiter).
  bool superseded = false;
  // The arbiter durably recorded that this side runs alone, so the peer (whose
  // replica goes stale with the first unacked frame released) can never be
  // given the VM. A primary releases unacked output only with this set.
  bool alone_recorded = false;
};

// Thread contract: implementations are thread-safe; `current()` is cheap and
// never blocks on the network (it reads state kept fresh by the arbiter's own
// thread); `claim()` may block up to `timeout` and is called by one thread.
class Arbiter {
 public:
  virtual ~Arbiter() = default;
  virtual std::string name() const = 0;  // "witness", "corosync", "none"

  // The verdict as of now. A primary checks it before releasing unacked
  // output and must stop when it turns false (self-fencing).
  virtual ArbiterVerdict current() const = 0;

  // The peer is unreachable: try to obtain the right to run alone. Returns a
  // verdict with may_run_alone=false (and why) when the arbiter refuses or
  // cannot decide in time; an Error only when the arbiter itself misbehaves.
  virtual Result<ArbiterVerdict> claim(std::chrono::milliseconds timeout) = 0;

  // Primary, peer lost, may_run_alone: have the arbiter record that this side
  // now runs alone (see ArbiterVerdict::alone_recorded). Without that record a
  // primary cut off from its peer *and* the arbiter could release output
  // during the rest of its lease that the peer's replica, activated after the
  // lease ran out, never produced. May block up to `timeout`.
  virtual Result<ArbiterVerdict> mark_alone(std::chrono::milliseconds timeout) = 0;

  // Primary: the peer acknowledged a consistent epoch after this side ran
  // alone (re-protected), so the record that it ran alone may go and the
  // peer may be given the VM again. Asynchronous; no-op without such a record.
  virtual void clear_alone() {}

  // ---- planned migration (a lease moves with the VM; quorum arbiters have none)
  // Old primary, guest paused at the final checkpoint: give the right to run
  // alone up now, so the peer can take it at once.
  virtual Status release_for_handover(std::chrono::milliseconds /*timeout*/) { return ok(); }
  // The handover failed: want the right back (the guest resumes here).
  virtual void hold_again() {}
  // The handover got no answer: take the right back if, and only if, nobody
  // held it since release_for_handover (then the peer never claimed it, so it
  // never activated). False: the peer may run the VM; this side stays fenced.
  // Quorum arbiters cannot tell, hence the default.
  virtual Result<bool> regain_after_handover(std::chrono::milliseconds /*timeout*/) {
    return false;
  }
  // New primary, before activating at a handover: obtain the right to run the VM.
  virtual Result<ArbiterVerdict> claim_for_handover(std::chrono::milliseconds /*timeout*/) {
    return ArbiterVerdict{.may_run_alone = true,
                          .evidence = name() + " arbiter: no lease moves in a handover"};
  }
};

}  // namespace ftd
