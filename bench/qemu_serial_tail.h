// Follows a growing console log (QEMU `-serial file:`) on a thread and stamps
// each complete line with the host's steady clock when it was first seen.
// The guest clock stands still while QEMU is stopped, so host stamps are the
// only honest clock for "how fast does the guest run, pauses included".
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"

namespace ftd::bench {

class SerialTail {
 public:
  using Clock = std::chrono::steady_clock;
  struct Line {
    Clock::time_point at;
    std::string text;
  };

  explicit SerialTail(std::string path,
                      std::chrono::milliseconds poll = std::chrono::milliseconds(2));
  ~SerialTail();
  SerialTail(const SerialTail&) = delete;
  SerialTail& operator=(const SerialTail&) = delete;

  std::vector<Line> lines() const;
  // Waits for a line containing `needle` (seen from line index `from` on).
  Result<Line> wait_for(const std::string& needle, std::chrono::milliseconds timeout,
                        size_t from = 0) const;
  size_t size() const;

 private:
  void run();

  const std::string path_;
  const std::chrono::milliseconds poll_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<Line> lines_;
  bool stop_ = false;
  std::thread thread_;
};

// `ftd-bench iter=N ms=X` lines: per-iteration time measured by the host
// (between consecutive iteration lines, both stamped inside [from, to]) and
// by the guest (X, which excludes the time QEMU had the VM stopped).
struct BenchIterations {
  size_t iterations = 0;
  double host_ms_mean = 0, host_ms_p50 = 0;
  double guest_ms_mean = 0;
};
BenchIterations bench_iterations(const std::vector<SerialTail::Line>& lines,
                                 SerialTail::Clock::time_point from,
                                 SerialTail::Clock::time_point to);

}  // namespace ftd::bench
