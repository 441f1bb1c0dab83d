// A real libvirtd for tests: Debian's /usr/sbin/libvirtd in session mode,
// run as user nobody (setpriv) with HOME and XDG directories in a temp dir of
// its own, so it touches nothing of the host's libvirt. Its unix socket is
// reached with uri(). Destroying it SIGKILLs the daemon it started and
// removes its directory.
// Why session mode: the privileged (root) qemu driver insists on the
// libvirt-qemu user that only libvirt-daemon-system's postinst creates.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "common/subprocess.h"
#include "tests/system/daemon_harness.h"

namespace ftd::testing {

class SessionLibvirtd {
 public:
  static Result<std::unique_ptr<SessionLibvirtd>> start();
  SessionLibvirtd(const SessionLibvirtd&) = delete;
  SessionLibvirtd& operator=(const SessionLibvirtd&) = delete;
  std::string uri() const;
  std::string log() const;
  // Defines (persistently) a domain from XML through the libvirt API.
  Status define(const std::string& xml) const;

 private:
  SessionLibvirtd() = default;
  TempDir dir_;
  Subprocess daemon_;
};

}  // namespace ftd::testing
