// One round of the guest's disk load (deploy/guest ftd-guest-diskload,
// knob ftd.diskload=<MiB>:<secs>) read off its console: the idle, rand4k and
// seq1m phases, each result as the guest measured it (guest clock: pauses
// left out) and as the host saw it (stamps of the start and result lines:
// pauses included).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/qemu_serial_tail.h"
#include "common/result.h"

namespace ftd::bench {

struct DiskPhaseResult {
  uint64_t ops = 0, bytes = 0, guest_us = 0;
  uint64_t p50_us = 0, p99_us = 0, max_us = 0;  // per write (+ fdatasync for rand4k)
  double wall_s = 0;                            // host: start line -> result line
};

// "ftd-diskload round=R phase=P ops=N us=T bytes=B p50_us=A p99_us=B max_us=C".
Result<DiskPhaseResult> parse_disk_phase(const std::string& line);

// A result as JSON: IOPS and MB/s by the guest clock and by the host's.
nlohmann::json to_json(const DiskPhaseResult& r);

// Called as each phase starts ("idle", "rand4k", "seq1m") with the phase's
// guest length; may block for part of it (to sample checkpoint pauses) and
// returns what it measured (null: nothing).
using PhaseProbe = std::function<nlohmann::json(const std::string& phase, double phase_s)>;

// Waits for the next round to start on `console` (an idle phase begun after
// this call) and follows it to the end. JSON: {round, rand4k, seq1m,
// probe: {idle, rand4k, seq1m}}.
Result<nlohmann::json> run_disk_round(const SerialTail& console, double phase_s,
                                      const PhaseProbe& probe, std::chrono::seconds timeout);

}  // namespace ftd::bench
