#include "common/service_notify.h"

#include <systemd/sd-daemon.h>

#include <string>

#include "common/log.h"

namespace ftd {
namespace {

// libsystemd rather than a hand-written datagram to $NOTIFY_SOCKET: it handles
// abstract sockets, credentials and the protocol's corner cases.
void send(const std::string& message) {
  // 0 = keep $NOTIFY_SOCKET: later role changes notify again.
  int rc = sd_notify(0, message.c_str());
  if (rc < 0)
    spdlog::warn("sd_notify.failed message=\"{}\" errno={}", message, -rc);
  else if (rc > 0)
    spdlog::debug("sd_notify.sent message=\"{}\"", message);
}

}  // namespace

void notify_ready(std::string_view status) { send("READY=1\nSTATUS=" + std::string(status)); }

void notify_status(std::string_view status) { send("STATUS=" + std::string(status)); }

void notify_stopping() { send("STOPPING=1"); }

}  // namespace ftd
