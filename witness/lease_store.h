// The witness's durable state: per VM, the last granted term and its holder,
// in one JSON file replaced atomically (write temp, fsync, rename, fsync the
// directory) before any new term is answered, so that no restart can grant
// the same term twice.
#pragma once

#include <string>

#include "common/result.h"
#include "witness/lease_table.h"

namespace ftd::witness {

class LeaseStore {
 public:
  explicit LeaseStore(std::string dir) : dir_(std::move(dir)) {}
  // An absent file is an empty table; a corrupt one is an error (refuse to
  // start rather than re-grant terms).
  Result<PersistedTable> load() const;
  Status save(const PersistedTable& table) const;
  std::string path() const { return dir_ + "/leases.json"; }

 private:
  std::string dir_;
};

}  // namespace ftd::witness
