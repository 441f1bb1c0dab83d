#include "bench/failover_log.h"

#include <time.h>

#include <fstream>

namespace ftd::bench {

namespace {

// "YYYY-mm-ddTHH:MM:SS.mmm" in local time (spdlog's %Y-%m-%dT%H:%M:%S.%e).
std::optional<double> parse_stamp(const std::string& s) {
  if (s.size() < 23 || s[10] != 'T' || s[19] != '.') return std::nullopt;
  tm t{};
  if (::strptime(s.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &t) == nullptr) return std::nullopt;
  t.tm_isdst = -1;
  const time_t secs = ::mktime(&t);
  if (secs == -1) return std::nullopt;
  return static_cast<double>(secs) + std::stoi(s.substr(20, 3)) / 1e3;
}

}  // namespace

std::vector<LogLine> read_ftd_log(const std::string& path) {
  std::vector<LogLine> out;
  std::ifstream in(path);
  for (std::string raw; std::getline(in, raw);) {
    auto stamp = parse_stamp(raw);
    if (!stamp) continue;
    // "<stamp> <level> <logger> <message>"
    size_t p = raw.find(' ');
    if (p != std::string::npos) p = raw.find(' ', p + 1);
    if (p != std::string::npos) p = raw.find(' ', p + 1);
    if (p == std::string::npos) continue;
    LogLine l{.unix_s = *stamp, .event = "", .text = raw.substr(p + 1)};
    l.event = l.text.substr(0, l.text.find(' '));
    out.push_back(std::move(l));
  }
  return out;
}

std::optional<std::string> log_field(const LogLine& line, const std::string& key) {
  const std::string needle = " " + key + "=";
  const size_t p = line.text.find(needle);
  if (p == std::string::npos) return std::nullopt;
  const size_t v = p + needle.size();
  if (v < line.text.size() && line.text[v] == '\'') {
    const size_t end = line.text.find('\'', v + 1);
    return line.text.substr(v + 1, end == std::string::npos ? std::string::npos : end - v - 1);
  }
  return line.text.substr(v, line.text.find(' ', v) - v);
}

std::optional<LogLine> first_line(const std::vector<LogLine>& lines, double from_unix_s,
                                  const std::string& event,
                                  const std::vector<std::pair<std::string, std::string>>& match) {
  for (const LogLine& l : lines) {
    if (l.unix_s < from_unix_s || l.event != event) continue;
    bool all = true;
    for (const auto& [k, prefix] : match) {
      auto v = log_field(l, k);
      if (!v || !v->starts_with(prefix)) all = false;
    }
    if (all) return l;
  }
  return std::nullopt;
}

}  // namespace ftd::bench
