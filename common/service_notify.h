// Tells the service manager (systemd, Type=notify units in deploy/systemd)
// what a daemon is doing, through sd_notify(3). Without $NOTIFY_SOCKET
// (started by hand, by a test, by Pacemaker) every call does nothing.
#pragma once

#include <string_view>

namespace ftd {

// READY=1 plus a first STATUS= line: the daemon serves its endpoints now.
void notify_ready(std::string_view status);
// STATUS=<text>, shown by `systemctl status` (e.g. a role change).
void notify_status(std::string_view status);
// STOPPING=1: a signal arrived and the daemon is shutting down.
void notify_stopping();

}  // namespace ftd
