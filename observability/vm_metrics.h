// What /metrics says: the same StatusReply snapshot `ftctl status` prints
// (ControlService::snapshot), plus the event counters, as metric families.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ftd.pb.h"
#include "observability/prometheus_text.h"

namespace ftd {

using EventCounts = std::map<std::pair<std::string, std::string>, uint64_t>;  // (vm, name)

std::vector<MetricFamily> vm_metric_families(const v1::StatusReply& status,
                                             const EventCounts& events);

}  // namespace ftd
