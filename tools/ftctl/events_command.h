// `ftctl events`: prints the daemon's recent events, then each new one as it
// happens, one line each (--json: one JSON object per line), until Ctrl-C or
// the daemon goes away.
#pragma once

#include <string>

#include "ftd.grpc.pb.h"

namespace ftd {

struct EventsCommand {
  std::string vm;  // empty: every VM
  bool json = false;
  bool no_replay = false;  // only events from now on
};

// Exit code: 0 when the daemon ended the stream, 3 when it is unreachable, 1 otherwise.
int run_events(v1::Control::Stub& stub, const EventsCommand& command);

}  // namespace ftd
