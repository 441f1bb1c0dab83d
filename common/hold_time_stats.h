// Hold-time distribution of released frames (= the latency output commit adds).
// Keeps the most recent samples in a fixed ring so percentiles follow the
// current regime and memory stays bounded; max and count are over all time.
// Not thread-safe: the owner serialises access.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ftd {

class HoldTimeStats {
 public:
  explicit HoldTimeStats(size_t window = 16384) : window_(window) { ring_.reserve(window); }

  void add(double micros) {
    if (ring_.size() < window_) {
      ring_.push_back(micros);
    } else {
      ring_[next_] = micros;
      next_ = (next_ + 1) % window_;
    }
    max_ = std::max(max_, micros);
    ++count_;
  }

  struct Summary {
    uint64_t count = 0;
    double p50_us = 0, p99_us = 0, max_us = 0;
  };
  Summary summary() const {
    Summary s{count_, 0, 0, max_};
    if (ring_.empty()) return s;
    std::vector<double> v = ring_;
    s.p50_us = percentile(v, 0.50);
    s.p99_us = percentile(v, 0.99);
    return s;
  }

 private:
  static double percentile(std::vector<double>& v, double q) {
    size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
    return v[k];
  }
  size_t window_;
  std::vector<double> ring_;
  size_t next_ = 0;
  double max_ = 0;
  uint64_t count_ = 0;
};

}  // namespace ftd
