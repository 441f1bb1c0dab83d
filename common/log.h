// Structured log lines: "event key=value ...", through spdlog.
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <vector>

namespace ftd {

// Configures the default logger: "<time> <level> <component> <message>".
// `component` is the process role (primary, secondary, ftctl...).
// `extra_sinks` receive every line at info and up, whatever `level` says.
void init_logging(const std::string& component, const std::string& level = "info",
                  std::vector<spdlog::sink_ptr> extra_sinks = {});

}  // namespace ftd
