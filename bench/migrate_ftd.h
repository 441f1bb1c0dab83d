// migrate_bench's ftd side: real daemons (tests/e2e ProtectedPair: primary
// host "pri", secondary "sec", ftd-witness, a client namespace pinging the
// guest and streaming TCP records to it) move the VM with `ftctl migrate`
// there and back, then measure re-protection after a failover to a returning
// host with a fresh replica directory (full) and with its stale replica
// (differential).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace ftd::bench {

struct FtdSideOptions {
  int memory_mib = 128;
  std::string append_extra;  // guest kernel command line additions (memload)
  int runs = 10;             // migrations, alternating direction
  unsigned plan_sample_ms = 5000;
  double lowered_downtime_limit_ms = 30;  // the plan's QEMU question, as the QEMU side asks
  bool reprotect = true;
  double ping_interval_s = 0.01;
  std::string keep_logs_dir;  // non-empty: the pair's logs are copied there at the end
};

// {plan, migrations: [...], reprotect: [...], records, ping}; times in ms
// unless the key says otherwise. Keys: see bench/README.md.
Result<nlohmann::json> run_ftd_side(const FtdSideOptions& options);

}  // namespace ftd::bench
