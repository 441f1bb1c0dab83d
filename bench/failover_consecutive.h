// The failover soak (issue 12): N host-kill failovers one after the other,
// each on a fresh ProtectedPair (re-protection after a failover does not
// exist yet, so one pair cannot fail over back and forth), with automatic
// failover and the live TCP record stream. Every run is recorded, failed ones
// included, with no retry; the totals say how many lost or duplicated a
// record or did not activate.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace ftd::bench {

struct ConsecutiveOptions {
  int runs = 50;
  std::string arbiter = "witness";
  std::string out;            // rewritten after every run
  std::string keep_logs_dir;  // <dir>/run-<i>/: the pair's logs of a run that failed
  std::string command;        // how the bench was invoked, for the JSON
};

// Returns the document written to `out`; its totals.runs_failed is 0 only if
// every run activated and its record verdict was ok.
nlohmann::json run_consecutive(const ConsecutiveOptions& options);

}  // namespace ftd::bench
