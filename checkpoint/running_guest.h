// A guest running on this host together with its output gates, outside any
// protection: what a PrimaryVm is made of, and what it hands back when
// protection ends (so the guest can be protected again, to another peer).
#pragma once

#include <memory>
#include <vector>

#include "checkpoint/guest_engine.h"
#include "checkpoint/transport.h"

namespace ftd {

struct RunningGuest {
  std::unique_ptr<GuestEngine> engine;
  std::vector<std::unique_ptr<OutputGate>> gates;  // the engine may push into them
};

}  // namespace ftd
