#include "tests/e2e/client_probes.h"

#include <signal.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "tests/system/daemon_harness.h"

namespace ftd::testing {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

double unix_now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

PingReport parse_ping(const std::string& text) {
  // [1700000000.123456] 64 bytes from 10.77.0.2: icmp_seq=12 ttl=64 time=55.3 ms
  static const std::regex reply(
      R"(^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+) .*time=([\d.]+) ms)");
  static const std::regex summary(
      R"((\d+) packets transmitted, (\d+) received,.* ([\d.]+)% packet loss)");
  PingReport r;
  std::istringstream in(text);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, reply)) {
      r.replies.push_back({std::stod(m[1]), std::stoull(m[2]), std::stod(m[3])});
    } else if (std::regex_search(line, m, summary)) {
      r.transmitted = std::stoull(m[1]);
      r.received = std::stoull(m[2]);
      r.loss_pct = std::stod(m[3]);
    }
  }
  for (size_t i = 1; i < r.replies.size(); ++i) {
    double gap = (r.replies[i].unix_s - r.replies[i - 1].unix_s) * 1000;
    if (gap > r.longest_gap_ms) {
      r.longest_gap_ms = gap;
      r.longest_gap_end_unix_s = r.replies[i].unix_s;
    }
  }
  return r;
}

size_t replies_between(const PingReport& r, double from_unix_s, double to_unix_s) {
  size_t n = 0;
  for (const auto& p : r.replies) n += p.unix_s >= from_unix_s && p.unix_s < to_unix_s;
  return n;
}

Result<PingProbe> PingProbe::start(const std::string& netns, const std::string& host,
                                   const std::string& log_path, double interval_s) {
  PingProbe p;
  p.log_path_ = log_path;
  FTD_ASSIGN_OR_RETURN(
      p.process_,
      Subprocess::spawn({.argv = {"ping", "-D", "-n", "-i", fmt::format("{}", interval_s), host},
                         .log_path = log_path,
                         .netns = netns}));
  return p;
}

PingReport PingProbe::report() const { return parse_ping(slurp(log_path_)); }

Result<PingReport> PingProbe::stop() {
  process_.kill(SIGINT);
  FTD_TRY(process_.wait(std::chrono::seconds(5)));
  return report();
}

Result<RecordStream> RecordStream::start(const std::string& netns, const std::string& host,
                                         const std::string& log_path, const std::string& json_path,
                                         double rate, double recv_timeout_s) {
  RecordStream s;
  s.log_path_ = log_path;
  s.json_path_ = json_path;
  FTD_ASSIGN_OR_RETURN(
      s.process_,
      Subprocess::spawn(
          {.argv = {built_binary("tools/record_client/ftd-record-client"), host, "--rate",
                    fmt::format("{}", rate), "--recv-timeout", fmt::format("{}", recv_timeout_s),
                    "--connect-timeout", "30", "--progress", "1", "--json-out", json_path},
           .log_path = log_path,
           .netns = netns}));
  return s;
}

RecordStream::Progress RecordStream::progress() const {
  static const std::regex line_re(R"(record\.progress .* sent=(\d+) received=(\d+))");
  std::istringstream in(slurp(log_path_));
  std::string line;
  std::smatch m;
  Progress p;
  while (std::getline(in, line)) {
    if (!std::regex_search(line, m, line_re)) continue;
    ++p.lines;
    p.sent = std::stoull(m[1]);
    p.received = std::stoull(m[2]);
  }
  return p;
}

std::optional<uint64_t> RecordStream::progress_received() const {
  auto p = progress();
  if (p.lines == 0) return std::nullopt;
  return p.received;
}

Result<std::pair<nlohmann::json, int>> RecordStream::stop(std::chrono::seconds timeout) {
  process_.kill(SIGTERM);
  FTD_ASSIGN_OR_RETURN(int code, process_.wait(timeout));
  std::string text = slurp(json_path_);
  if (text.empty())
    return make_error(ErrorCode::kNotFound, "record client wrote no verdict; log:\n{}",
                      slurp(log_path_));
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return make_error(ErrorCode::kCorrupt, "record client verdict is not JSON: {}", text);
  return std::pair{j, code};
}

nlohmann::json record_summary(const nlohmann::json& j, int exit_code) {
  return {{"sent", j.value("sent", 0)},
          {"received", j.value("received", 0)},
          {"lost", j.value("lost", -1)},
          {"duplicated", j.value("duplicated", -1)},
          {"reordered", j.value("reordered", -1)},
          {"server_seq_breaks", j.value("server_seq_breaks", -1)},
          {"unknown", j.value("unknown", -1)},
          {"ok", j.value("ok", false)},
          {"error", j.value("error", "")},
          {"longest_gap_ms", j.value("longest_gap_ms", 0.0)},
          {"longest_gap_before_seq", j.value("longest_gap_before_seq", 0)},
          {"latency_p99_ms", j.value("latency_p99_ms", 0.0)},
          {"exit_code", exit_code}};
}

}  // namespace ftd::testing
