// What `ftctl plan` prints and the benchmarks record: the measured inputs
// and the model's predictions, as a table or as JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "planning/cost_model.h"

namespace ftd::planning {

struct PlanQuestion {
  double epoch_ms = 0;  // 0: the epoch the guest was sampled at
  // precopy.bandwidth_bytes_per_s 0: min(the link, QEMU's max-bandwidth).
  PrecopyParams precopy;
  double qemu_max_bandwidth_bytes_per_s = 128.0 * 1048576;  // QEMU 7.2's default cap
};

// The whole plan: {inputs, protection, ftd_migration, qemu_precopy}.
nlohmann::json plan_json(const PlanInputs& in, const PlanQuestion& q);
std::string plan_table(const PlanInputs& in, const PlanQuestion& q);

}  // namespace ftd::planning
