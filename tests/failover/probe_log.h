// Reads the JSON lines written by ftd-arbiter-probe (one verdict every ~10 ms,
// CLOCK_MONOTONIC timestamps shared by all namespaces on this machine).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ftd::test {

struct ProbeLine {
  int64_t t_ns = 0;
  bool claim = false;  // the line reports claim(), not current()
  bool may_run_alone = false;
  bool connected = false;
  bool quorate = false;
  uint32_t node = 0;
  std::vector<uint32_t> members;
  uint32_t votes = 0;
  uint64_t term = 0;
  std::string evidence;
  std::string error;

  bool has_member(uint32_t id) const;
};

// Every complete line so far (a half-written last line is skipped).
std::vector<ProbeLine> read_probe_log(const std::string& path);

// Polls the log until a line satisfies `pred` (returned) or the timeout.
std::optional<ProbeLine> wait_for_line(const std::string& path,
                                       const std::function<bool(const ProbeLine&)>& pred,
                                       std::chrono::milliseconds timeout);

int64_t monotonic_ns();

}  // namespace ftd::test
