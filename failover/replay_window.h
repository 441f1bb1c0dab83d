// Sliding anti-replay window (as in IPsec, RFC 4303 §3.4.3): accepts each
// sequence number once, and nothing older than the newest minus 64.
#pragma once

#include <cstdint>

namespace ftd {

class ReplayWindow {
 public:
  // True (and records it) if `seq` was not seen and is inside the window.
  bool accept(uint64_t seq) {
    if (seq == 0) return false;
    if (seq > highest_) {
      const uint64_t shift = seq - highest_;
      bits_ = shift >= 64 ? 0 : bits_ << shift;
      bits_ |= 1;
      highest_ = seq;
      return true;
    }
    const uint64_t behind = highest_ - seq;
    if (behind >= 64) return false;
    const uint64_t bit = uint64_t{1} << behind;
    if (bits_ & bit) return false;
    bits_ |= bit;
    return true;
  }
  uint64_t highest() const { return highest_; }

 private:
  uint64_t highest_ = 0;
  uint64_t bits_ = 0;  // bit i: highest_ - i was seen
};

}  // namespace ftd
