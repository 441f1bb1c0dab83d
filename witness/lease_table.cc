#include "witness/lease_table.h"

#include <fmt/format.h>

#include <algorithm>

namespace ftd::witness {

LeaseTable::LeaseTable(PersistedTable loaded, Clock::time_point now,
                       std::chrono::milliseconds lease)
    : lease_(lease) {
  for (auto& [vm, p] : loaded) leases_[vm] = Lease{p, now + lease};
}

LeaseDecision LeaseTable::decide(const std::string& vm, const std::string& holder, bool alone,
                                 Clock::time_point now, bool rejoined) const {
  auto it = leases_.find(vm);
  if (it == leases_.end())
    return {.granted = true,
            .new_term = true,
            .alone = alone,
            .must_persist = true,
            .term = 1,
            .holder = holder};
  const Lease& l = it->second;
  const bool valid = now < l.expires;
  if (l.p.holder == holder) {
    LeaseDecision d{.granted = true,
                    .new_term = !valid,
                    // Only the holder clears its own mark: it alone knows
                    // its new peer acknowledged a consistent epoch.
                    .alone = (l.p.alone && !rejoined) || alone,
                    .term = valid ? l.p.term : l.p.term + 1,
                    .holder = holder};
    d.must_persist = d.new_term || d.alone != l.p.alone;
    return d;
  }
  if (l.p.alone)
    return {.term = l.p.term,
            .holder = l.p.holder,
            .reason = fmt::format("{} ran alone in term {}: this side's replica is stale; "
                                  "re-protect the VM before it may run here",
                                  l.p.holder, l.p.term)};
  if (!valid)
    return {.granted = true,
            .new_term = true,
            .alone = alone,
            .must_persist = true,
            .term = l.p.term + 1,
            .holder = holder};
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(l.expires - now);
  return {.term = l.p.term,
          .holder = l.p.holder,
          .remaining = left,
          .reason = fmt::format("held by {} (term {}) for {} ms more", l.p.holder, l.p.term,
                                left.count())};
}

bool LeaseTable::release(const std::string& vm, const std::string& holder, Clock::time_point now) {
  auto it = leases_.find(vm);
  if (it == leases_.end() || it->second.p.holder != holder) return false;
  it->second.expires = std::min(it->second.expires, now);
  return true;
}

void LeaseTable::commit(const std::string& vm, const LeaseDecision& d, Clock::time_point now) {
  if (!d.granted) return;
  leases_[vm] = Lease{{d.term, d.holder, d.alone}, now + lease_};
}

PersistedTable LeaseTable::persisted_with(const std::string& vm, const LeaseDecision& d) const {
  PersistedTable t;
  for (const auto& [name, l] : leases_) t[name] = l.p;
  if (d.granted) t[vm] = {d.term, d.holder, d.alone};
  return t;
}

}  // namespace ftd::witness
