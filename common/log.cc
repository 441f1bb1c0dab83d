#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <algorithm>

namespace ftd {

void init_logging(const std::string& component, const std::string& level,
                  std::vector<spdlog::sink_ptr> extra_sinks) {
  const auto stderr_level = spdlog::level::from_str(level);
  auto to_stderr = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  to_stderr->set_level(stderr_level);
  // Extra sinks (the event journal) see info and up even when stderr is
  // quieter: a state change must be recorded whatever the log level.
  auto logger_level = stderr_level;
  for (auto& sink : extra_sinks) {
    sink->set_level(spdlog::level::info);
    logger_level = std::min(logger_level, spdlog::level::info);
  }
  extra_sinks.insert(extra_sinks.begin(), std::move(to_stderr));
  auto logger = std::make_shared<spdlog::logger>(component, extra_sinks.begin(), extra_sinks.end());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %L %n %v");
  logger->set_level(logger_level);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

}  // namespace ftd
