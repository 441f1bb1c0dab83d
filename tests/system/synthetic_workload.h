// The synthetic workload the system tests run on both daemons: its flags, and
// the same configuration in-process for replaying it as an oracle.
#pragma once

#include <string>
#include <vector>

#include "synthetic/synthetic_engine.h"

namespace ftd::testing {

inline SyntheticEngine::Config workload(uint64_t memory_mib = 64) {
  // Must match what daemon/engine_options.cc builds from workload_flags().
  return {.memory_bytes = memory_mib << 20,
          .dirty_pages_per_sec = 20000,
          .locality = 0.5,
          .seed = 7,
          .bytes_per_write = 1024,
          .messages_per_sec = 400};
}

inline std::vector<std::string> workload_flags(uint64_t memory_mib = 64) {
  return {"--vm",
          "vm0",
          "--memory-mib",
          std::to_string(memory_mib),
          "--dirty-rate",
          "20000",
          "--locality",
          "0.5",
          "--seed",
          "7",
          "--bytes-per-write",
          "1024",
          "--messages-per-sec",
          "400"};
}

}  // namespace ftd::testing
