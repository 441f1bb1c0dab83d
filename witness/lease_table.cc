#include "witness/lease_table.h"

#include <fmt/format.h>

namespace ftd::witness {

LeaseTable::LeaseTable(PersistedTable loaded, Clock::time_point now,
                       std::chrono::milliseconds lease)
    : lease_(lease) {
  for (auto& [vm, p] : loaded) leases_[vm] = Lease{p, now + lease};
}

LeaseDecision LeaseTable::decide(const std::string& vm, const std::string& holder,
                                 Clock::time_point now) const {
  auto it = leases_.find(vm);
  if (it == leases_.end()) return {.granted = true, .new_term = true, .term = 1, .holder = holder};
  const Lease& l = it->second;
  const bool valid = now < l.expires;
  if (l.p.holder == holder && valid)
    return {.granted = true, .term = l.p.term, .holder = holder};  // renewal
  if (!valid) return {.granted = true, .new_term = true, .term = l.p.term + 1, .holder = holder};
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(l.expires - now);
  return {.term = l.p.term,
          .holder = l.p.holder,
          .remaining = left,
          .reason = fmt::format("held by {} (term {}) for {} ms more", l.p.holder, l.p.term,
                                left.count())};
}

void LeaseTable::commit(const std::string& vm, const LeaseDecision& d, Clock::time_point now) {
  if (!d.granted) return;
  leases_[vm] = Lease{{d.term, d.holder}, now + lease_};
}

PersistedTable LeaseTable::persisted_with(const std::string& vm, const LeaseDecision& d) const {
  PersistedTable t;
  for (const auto& [name, l] : leases_) t[name] = l.p;
  if (d.granted) t[vm] = {d.term, d.holder};
  return t;
}

}  // namespace ftd::witness
