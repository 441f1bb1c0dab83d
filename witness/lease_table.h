// The witness's lease logic, without I/O or clocks of its own (the caller
// passes `now`), so its ordering rules are testable directly:
//  - a free or expired lease is granted to anyone under a *new* term;
//  - the holder renews its term while it is valid (and after it expired, if
//    nobody else took it, under a new term);
//  - another holder is refused while the lease runs;
//  - after a restart every known lease counts as renewed at start-up, because
//    the witness cannot know when the last renewal happened;
//  - the holder may release its lease early (planned migration): it
//    expires at once, so the peer gets a new term without waiting;
//  - once a holder marked the lease "alone" (it released output its peer
//    never acknowledged, so the peer's replica is stale), nobody else is ever
//    granted the VM: not even after the lease expires — until the holder
//    says its peer is consistent again (`rejoined`: re-protected).
// Thread contract: not thread-safe; WitnessService serialises access.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace ftd::witness {

using Clock = std::chrono::steady_clock;

struct PersistedLease {
  uint64_t term = 0;
  std::string holder;
  bool alone = false;  // sticky: the holder ran without its peer in some term
  bool operator==(const PersistedLease&) const = default;
};
using PersistedTable = std::map<std::string, PersistedLease>;  // by VM

struct LeaseDecision {
  bool granted = false;
  bool new_term = false;      // must be persisted before the grant is answered
  bool alone = false;         // the lease (as granted) carries the alone mark
  bool must_persist = false;  // new term or newly set alone mark
  uint64_t term = 0;
  std::string holder;
  std::chrono::milliseconds remaining{0};  // refused: the holder's lease left
  std::string reason;
};

class LeaseTable {
 public:
  LeaseTable(PersistedTable loaded, Clock::time_point now, std::chrono::milliseconds lease);

  LeaseDecision decide(const std::string& vm, const std::string& holder, bool alone,
                       Clock::time_point now, bool rejoined = false) const;
  // The holder gives its lease up (planned migration): it expires now, its
  // term and alone mark stay. False if `holder` does not hold it.
  bool release(const std::string& vm, const std::string& holder, Clock::time_point now);
  // Term and holder as recorded (empty for an unknown VM).
  PersistedLease lease_of(const std::string& vm) const {
    auto it = leases_.find(vm);
    return it == leases_.end() ? PersistedLease{} : it->second.p;
  }
  // Applies a granted decision (after it was persisted if it has a new term).
  void commit(const std::string& vm, const LeaseDecision& d, Clock::time_point now);
  // The table as it would be persisted with `d` applied.
  PersistedTable persisted_with(const std::string& vm, const LeaseDecision& d) const;
  std::chrono::milliseconds lease() const { return lease_; }

 private:
  struct Lease {
    PersistedLease p;
    Clock::time_point expires;
  };
  std::map<std::string, Lease> leases_;
  std::chrono::milliseconds lease_;
};

}  // namespace ftd::witness
