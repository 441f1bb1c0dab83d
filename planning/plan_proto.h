// PlanInputs <-> its wire form (the Plan RPC carries the measured inputs;
// whoever asked runs the model).
#pragma once

#include "ftd.pb.h"
#include "planning/cost_model.h"

namespace ftd::planning {

v1::PlanInputs to_proto(const PlanInputs& in);
PlanInputs from_proto(const v1::PlanInputs& p);

}  // namespace ftd::planning
