// What a client of the protected guest sees, measured from the client network
// namespace: a TCP record stream (ftd-record-client) and an ICMP echo stream
// (ping -D -i 0.05). Both run as child processes logging to files; parsing is
// separate so it can be unit-tested on canned output.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/subprocess.h"

namespace ftd::testing {

// One echo reply line of `ping -D`: when it arrived (wall clock) and its sequence number.
struct PingReply {
  double unix_s = 0;
  uint64_t seq = 0;
  double rtt_ms = 0;
};

struct PingReport {
  std::vector<PingReply> replies;
  uint64_t transmitted = 0;  // from the summary line; 0 when ping printed none
  uint64_t received = 0;
  double loss_pct = 0;
  double longest_gap_ms = 0;  // between consecutive replies (service interruption)
  double longest_gap_end_unix_s = 0;
};

// Parses ping -D output (reply lines and the final "N packets transmitted" line).
PingReport parse_ping(const std::string& text);

// Replies that arrived within [from, to) (wall clock seconds).
size_t replies_between(const PingReport& r, double from_unix_s, double to_unix_s);

class PingProbe {
 public:
  // `ping -D -n -i <interval> <host>` inside `netns`, output to `log_path`.
  static Result<PingProbe> start(const std::string& netns, const std::string& host,
                                 const std::string& log_path, double interval_s = 0.05);
  PingReport report() const;  // what was logged so far
  // SIGINT (ping prints its summary), wait; returns the full report.
  Result<PingReport> stop();

 private:
  Subprocess process_;
  std::string log_path_;
};

class RecordStream {
 public:
  // ftd-record-client against <host>:7000 inside `netns`; progress + log to `log_path`,
  // the verdict JSON to `json_path`.
  static Result<RecordStream> start(const std::string& netns, const std::string& host,
                                    const std::string& log_path, const std::string& json_path,
                                    double rate = 50, double recv_timeout_s = 60);
  struct Progress {
    size_t lines = 0;                 // progress lines so far
    uint64_t sent = 0, received = 0;  // of the newest one
  };
  Progress progress() const;
  // "received=" of the newest progress line, if any.
  std::optional<uint64_t> progress_received() const;
  // SIGTERM, wait for the verdict; returns the JSON and the exit code.
  Result<std::pair<nlohmann::json, int>> stop(std::chrono::seconds timeout);

 private:
  Subprocess process_;
  std::string log_path_, json_path_;
};

// The record client's verdict in a report's shape: sent, received, lost,
// duplicated, reordered, server counter breaks, unknown replies, ok, error,
// longest gap (and the first number answered after it), latency p99, exit code.
nlohmann::json record_summary(const nlohmann::json& verdict, int exit_code);

// Wall clock now, seconds since the epoch (the clock ping -D and the record client use).
double unix_now_s();

}  // namespace ftd::testing
