// Reading ftd's own log for the failover bench: every line starts with a
// local-time timestamp ("2026-11-23T20:45:01.123 I ftd event k=v ..."), so
// the moments the daemon decided something can be taken from it with
// millisecond resolution and no polling lag.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ftd::bench {

struct LogLine {
  double unix_s = 0;  // the line's timestamp
  std::string event;  // first word of the message ("failover_decision")
  std::string text;   // the whole message after the logger name
};

// Every line of `path` with a parseable timestamp, in file order.
std::vector<LogLine> read_ftd_log(const std::string& path);

// Value of `key=` in a structured line; quoted values ('...') without quotes.
std::optional<std::string> log_field(const LogLine& line, const std::string& key);

// The first line at or after `from_unix_s` with `event` whose fields match
// every (key, value prefix) in `match`.
std::optional<LogLine> first_line(const std::vector<LogLine>& lines, double from_unix_s,
                                  const std::string& event,
                                  const std::vector<std::pair<std::string, std::string>>& match);

}  // namespace ftd::bench
