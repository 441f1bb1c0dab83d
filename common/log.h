// Structured log lines: "event key=value ...", through spdlog.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace ftd {

// Configures the default logger: "<time> <level> <component> <message>".
// `component` is the process role (primary, secondary, ftctl...).
void init_logging(const std::string& component, const std::string& level = "info");

}  // namespace ftd
