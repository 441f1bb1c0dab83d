// Which gRPC addresses may carry plaintext: only those no other host can
// reach. Checked at start-up, before anything listens or dials.
#pragma once

#include <string_view>

#include "common/result.h"

namespace ftd {

// unix:/path (file permissions guard it), 127.0.0.0/8, ::1, localhost.
// Not unix-abstract: (no permissions), not 0.0.0.0 or any other host name.
bool is_host_local(std::string_view address);

// Error naming `flag` and `address` unless TLS is on, --insecure was given,
// or the address is host-local.
Status check_plaintext_allowed(std::string_view flag, std::string_view address, bool tls,
                               bool insecure);

// The control API is stricter: over TCP, even loopback (any local user can
// connect to a port), it needs TLS or --insecure; a unix socket is 0600.
Status check_control_plaintext_allowed(std::string_view address, bool tls, bool insecure);

// The path of a "unix:/path" or "unix:path" address; empty for any other.
std::string_view unix_socket_path(std::string_view address);

}  // namespace ftd
