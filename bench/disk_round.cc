#include "bench/disk_round.h"

#include <fmt/format.h>

#include <map>
#include <sstream>

namespace ftd::bench {

using Json = nlohmann::json;

Result<DiskPhaseResult> parse_disk_phase(const std::string& line) {
  std::map<std::string, uint64_t> kv;
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) continue;
    try {
      kv[word.substr(0, eq)] = std::stoull(word.substr(eq + 1));
    } catch (const std::exception&) {  // phase=rand4k and other words
    }
  }
  for (const char* key : {"ops", "us", "bytes", "p50_us", "p99_us", "max_us"})
    if (!kv.contains(key))
      return make_error(ErrorCode::kInvalidArgument, "diskload line without {}: '{}'", key, line);
  return DiskPhaseResult{.ops = kv["ops"],
                         .bytes = kv["bytes"],
                         .guest_us = kv["us"],
                         .p50_us = kv["p50_us"],
                         .p99_us = kv["p99_us"],
                         .max_us = kv["max_us"]};
}

Json to_json(const DiskPhaseResult& r) {
  const double guest_s = static_cast<double>(r.guest_us) / 1e6;
  const auto per_s = [](double v, double s) { return s > 0 ? v / s : 0.0; };
  const auto ops = static_cast<double>(r.ops), mb = static_cast<double>(r.bytes) / 1e6;
  return {{"ops", r.ops},
          {"bytes", r.bytes},
          {"guest_s", guest_s},
          {"wall_s", r.wall_s},
          {"iops_guest", per_s(ops, guest_s)},
          {"iops_wall", per_s(ops, r.wall_s)},
          {"mbps_guest", per_s(mb, guest_s)},
          {"mbps_wall", per_s(mb, r.wall_s)},
          {"p50_us", r.p50_us},
          {"p99_us", r.p99_us},
          {"max_us", r.max_us}};
}

Result<Json> run_disk_round(const SerialTail& console, double phase_s, const PhaseProbe& probe,
                            std::chrono::seconds timeout) {
  const auto deadline = SerialTail::Clock::now() + timeout;
  const auto left = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                 SerialTail::Clock::now());
  };
  auto idle = console.wait_for("phase=idle start", left(), console.size());
  if (!idle) return std::unexpected(idle.error().with_context("waiting for a diskload round"));
  // "ftd-diskload round=R ": this round's lines only.
  const std::string round = idle->text.substr(idle->text.find("round="));
  const std::string tag = "ftd-diskload " + round.substr(0, round.find(' '));
  Json out{{"round", tag.substr(tag.find('=') + 1)}, {"probe", Json::object()}};
  out["probe"]["idle"] = probe("idle", phase_s);
  for (const char* phase : {"rand4k", "seq1m"}) {
    const std::string prefix = fmt::format("{} phase={} ", tag, phase);
    auto start = console.wait_for(prefix + "start", left());
    if (!start) return std::unexpected(start.error().with_context(prefix + "start"));
    out["probe"][phase] = probe(phase, phase_s);
    auto done = console.wait_for(prefix + "ops=", left());
    if (!done) {
      auto failed = console.wait_for(prefix + "error", std::chrono::milliseconds(1));
      return make_error(ErrorCode::kIo, "guest disk load: {}",
                        failed ? failed->text : done.error().to_string());
    }
    FTD_ASSIGN_OR_RETURN(DiskPhaseResult r, parse_disk_phase(done->text));
    r.wall_s = std::chrono::duration<double>(done->at - start->at).count();
    out[phase] = to_json(r);
  }
  return out;
}

}  // namespace ftd::bench
