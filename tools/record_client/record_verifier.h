// Checks a stream of replies from the guest record service against what was
// sent: every client number answered exactly once, in order, and the server's
// per-connection counter strictly consecutive. Pure bookkeeping (no I/O) so the
// rules are unit-tested without a network.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ftd::record {

using Clock = std::chrono::steady_clock;

// One decoded reply (see deploy/guest/src/ftd_record.h for the wire format).
struct Reply {
  uint64_t client_seq = 0;
  uint64_t server_seq = 0;
  uint64_t server_total = 0;
  uint64_t echo = 0;  // what the client put there: send time, ns since client start
};

struct Summary {
  uint64_t sent = 0;
  uint64_t received = 0;  // distinct client numbers answered
  uint64_t lost = 0;      // sent but never answered
  uint64_t duplicated = 0;
  uint64_t reordered = 0;
  uint64_t server_seq_breaks = 0;
  uint64_t unknown = 0;  // replies to numbers never sent
  double longest_gap_ms = 0;
  double longest_gap_at_s = 0;          // seconds since start, when the gap ended
  int64_t longest_gap_at_unix_ms = 0;   // same moment, wall clock (to match daemon logs)
  uint64_t longest_gap_before_seq = 0;  // first client number answered after the gap
  double latency_p50_ms = 0, latency_p99_ms = 0, latency_max_ms = 0;
  uint64_t first_server_total = 0, last_server_total = 0;
  double elapsed_s = 0;
  std::string error;  // connection / protocol failure, empty if none
  bool ok = false;

  nlohmann::json to_json() const;
};

class RecordVerifier {
 public:
  explicit RecordVerifier(Clock::time_point start) : start_(start) {}

  // Allocates the next client number (1, 2, ...) for a record about to be sent.
  uint64_t next_to_send();
  void on_reply(const Reply& reply, Clock::time_point now);
  // A connection or protocol failure; makes the run fail.
  void set_error(std::string error);

  uint64_t sent() const { return sent_; }
  uint64_t received() const { return received_; }
  uint64_t outstanding() const { return sent_ - received_; }
  bool has_error() const { return !error_.empty(); }
  double longest_gap_ms() const { return longest_gap_ms_; }
  Summary summary(Clock::time_point now) const;

 private:
  Clock::time_point start_;
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
  uint64_t duplicated_ = 0;
  uint64_t reordered_ = 0;
  uint64_t unknown_ = 0;
  uint64_t highest_ = 0;
  uint64_t last_server_seq_ = 0;
  uint64_t server_seq_breaks_ = 0;
  uint64_t first_server_total_ = 0;
  uint64_t last_server_total_ = 0;
  std::vector<bool> seen_;  // indexed by client number
  bool have_reply_ = false;
  Clock::time_point last_reply_;
  double longest_gap_ms_ = 0;
  double longest_gap_at_s_ = 0;
  int64_t longest_gap_at_unix_ms_ = 0;
  uint64_t longest_gap_before_seq_ = 0;
  std::vector<float> latencies_ms_;
  std::string error_;
};

}  // namespace ftd::record
