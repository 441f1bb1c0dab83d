#include "tests/failover/probe_log.h"

#include <time.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace ftd::test {

bool ProbeLine::has_member(uint32_t id) const {
  return std::find(members.begin(), members.end(), id) != members.end();
}

std::vector<ProbeLine> read_probe_log(const std::string& path) {
  std::vector<ProbeLine> out;
  std::ifstream f(path);
  std::string text;
  while (std::getline(f, text)) {
    if (f.eof()) break;  // no newline yet: still being written
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("t_ns")) continue;  // e.g. a log line on stderr
    ProbeLine l;
    l.t_ns = j["t_ns"].get<int64_t>();
    l.claim = j.value("claim", false);
    l.may_run_alone = j.value("may_run_alone", false);
    l.connected = j.value("connected", false);
    l.quorate = j.value("quorate", false);
    l.node = j.value("node", 0u);
    l.members = j.value("members", std::vector<uint32_t>{});
    l.votes = j.value("votes", 0u);
    l.term = j.value("term", uint64_t{0});
    l.evidence = j.value("evidence", std::string{});
    l.error = j.value("error", std::string{});
    out.push_back(std::move(l));
  }
  return out;
}

std::optional<ProbeLine> wait_for_line(const std::string& path,
                                       const std::function<bool(const ProbeLine&)>& pred,
                                       std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t seen = 0;
  for (;;) {
    auto lines = read_probe_log(path);
    for (size_t i = seen; i < lines.size(); ++i) {
      if (pred(lines[i])) return lines[i];
    }
    seen = lines.size();
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace ftd::test
