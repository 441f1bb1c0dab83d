#include "tests/guest/iperf_client.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/subprocess.h"

namespace ftd::testing {
namespace {

using Json = nlohmann::json;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// "user=...\npassword=...\n" as build-guest.sh writes it.
Result<std::pair<std::string, std::string>> read_credentials(const std::string& path) {
  std::ifstream f(path);
  if (!f)
    return make_error(ErrorCode::kNotFound, "{} missing (build the guest: ninja guest)", path);
  std::string line, user, password;
  while (std::getline(f, line)) {
    if (line.starts_with("user=")) user = line.substr(5);
    if (line.starts_with("password=")) password = line.substr(9);
  }
  if (user.empty() || password.empty())
    return make_error(ErrorCode::kInvalidArgument, "{}: want user= and password= lines", path);
  return std::pair{user, password};
}

int64_t int_or(const Json& j, const char* key, int64_t fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<int64_t>() : fallback;
}
double number_or(const Json& j, const char* key, double fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

}  // namespace

Result<IperfResult> parse_iperf_json(const std::string& text) {
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return make_error(ErrorCode::kInvalidArgument, "iperf3 output is not a JSON object: {:.200}",
                      text);
  if (doc.contains("error"))
    return make_error(ErrorCode::kUnavailable, "iperf3: {}", doc["error"].dump());
  if (!doc.contains("end") || !doc["end"].contains("sum_received") ||
      !doc["end"].contains("sum_sent"))
    return make_error(ErrorCode::kInvalidArgument, "iperf3 JSON without end.sum_sent/sum_received");
  const Json& end = doc["end"];
  IperfResult r;
  r.end = end;
  const Json& rx = end["sum_received"];
  const Json& tx = end["sum_sent"];
  // Rates by this host's clock: the guest's clock stands still while a
  // checkpoint has it stopped, so the guest side's own seconds (and its
  // bits_per_second) exclude the pauses and overstate the rate. The client is
  // the sender, or with -R the receiver.
  const bool reverse = doc.contains("start") && doc["start"].contains("test_start") &&
                       int_or(doc["start"]["test_start"], "reverse", 0) != 0;
  const Json& local = reverse ? rx : tx;
  const Json& remote = reverse ? tx : rx;
  r.seconds = number_or(local, "seconds", 0);
  r.guest_seconds = number_or(remote, "seconds", 0);
  r.bytes_received = static_cast<uint64_t>(int_or(rx, "bytes", 0));
  r.bytes_sent = static_cast<uint64_t>(int_or(tx, "bytes", 0));
  if (r.seconds <= 0)
    return make_error(ErrorCode::kInvalidArgument, "iperf3 JSON: no duration on the client side");
  r.received_mbit_per_sec = static_cast<double>(r.bytes_received) * 8 / r.seconds / 1e6;
  r.sent_mbit_per_sec = static_cast<double>(r.bytes_sent) * 8 / r.seconds / 1e6;
  r.retransmits = int_or(tx, "retransmits", -1);
  // Per-stream sender details carry the kernel's TCP_INFO when this host sent.
  if (end.contains("streams") && end["streams"].is_array() && !end["streams"].empty()) {
    const Json& s = end["streams"][0];
    if (s.contains("sender")) {
      r.max_snd_cwnd_bytes = int_or(s["sender"], "max_snd_cwnd", -1);
      r.mean_rtt_us = int_or(s["sender"], "mean_rtt", -1);
    }
  }
  return r;
}

Result<IperfResult> run_iperf(const IperfRun& run) {
  FTD_ASSIGN_OR_RETURN(auto creds, read_credentials(run.guest_dir + "/iperf3-credentials"));
  const std::string key = run.guest_dir + "/iperf3-public.pem";
  if (!std::filesystem::exists(key))
    return make_error(ErrorCode::kNotFound, "{} missing (build the guest: ninja guest)", key);
  const std::string stem =
      fmt::format("{}/iperf-{}-{}", run.scratch_dir, run.reverse ? "rev" : "fwd", ::getpid());
  const std::string json_path = stem + ".json", err_path = stem + ".err";
  std::error_code ec;
  std::filesystem::remove(json_path, ec);
  std::filesystem::remove(err_path, ec);
  SpawnOptions so{
      .argv = {"iperf3", "-c", run.server_ip, "-p", std::to_string(run.port), "-t",
               std::to_string(run.seconds), "-J", "--logfile", json_path, "--connect-timeout",
               "10000", "--username", creds.first, "--rsa-public-key-path", key},
      // iperf3 takes the password from the environment only (or a prompt).
      .env = {"IPERF3_PASSWORD=" + creds.second},
      .log_path = err_path,
      .netns = run.netns};
  if (run.reverse) so.argv.push_back("-R");
  FTD_ASSIGN_OR_RETURN(auto proc, Subprocess::spawn(so));
  auto code = proc.wait(std::chrono::seconds(run.seconds + 30));
  if (!code) return std::unexpected(code.error().with_context("iperf3"));
  auto result = parse_iperf_json(slurp(json_path));
  if (!result) {
    return make_error(result.error().code, "{} (exit {}; stderr: {:.300})", result.error().message,
                      *code, slurp(err_path));
  }
  if (*code != 0)
    return make_error(ErrorCode::kInternal, "iperf3 exited {}: {:.300}", *code, slurp(err_path));
  return result;
}

nlohmann::json iperf_json(const IperfResult& r) {
  return {{"seconds", r.seconds},
          {"guest_seconds", r.guest_seconds},
          {"bytes_sent", r.bytes_sent},
          {"mbit_per_sec", r.received_mbit_per_sec},
          {"sent_mbit_per_sec", r.sent_mbit_per_sec},
          {"bytes_received", r.bytes_received},
          {"retransmits", r.retransmits},
          {"max_snd_cwnd_bytes", r.max_snd_cwnd_bytes},
          {"mean_rtt_us", r.mean_rtt_us}};
}

}  // namespace ftd::testing
