// STONITH-style fencing: an operator-supplied program that makes sure the
// peer host is dead (powers it off, cuts it from the network) before this
// side activates. Activation may proceed only if it exits 0 within the time
// limit; a command that hangs is SIGKILLed with its whole process group.
//
// The command gets the peer's identity as its last argument and in the
// environment: FTD_VM, FTD_PEER (peer name), FTD_PEER_ADDRESS.
// Thread contract: run() blocks the calling thread; no shared state.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/result.h"

namespace ftd {

struct FenceTarget {
  std::string vm;
  std::string peer;          // e.g. the peer host's name / namespace
  std::string peer_address;  // e.g. its replication address
};

struct FenceResult {
  int exit_code = 0;
  std::chrono::milliseconds elapsed{0};
  std::string output;  // stdout+stderr, truncated
};

class FenceCommand {
 public:
  FenceCommand(std::vector<std::string> argv, std::chrono::milliseconds time_limit)
      : argv_(std::move(argv)), time_limit_(time_limit) {}
  // ok only on exit 0 in time; otherwise kTimeout (killed) or kFailedPrecondition.
  Result<FenceResult> run(const FenceTarget& target) const;
  std::string describe() const;

 private:
  std::vector<std::string> argv_;
  std::chrono::milliseconds time_limit_;
};

}  // namespace ftd
