#include "security/grpc_listen.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/unique_fd.h"
#include "security/address_policy.h"

namespace ftd {
namespace {

// gRPC unlinks an existing socket file before binding, which would silently
// take the address from a daemon still serving on it. Refuse if one answers.
Status check_unix_socket_free(const std::string& path) {
  sockaddr_un a{};
  if (path.size() >= sizeof a.sun_path)
    return make_error(ErrorCode::kInvalidArgument, "unix socket path too long: {}", path);
  a.sun_family = AF_UNIX;
  path.copy(a.sun_path, path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0)
    return make_error(ErrorCode::kFailedPrecondition,
                      "unix:{} is in use: another process is serving on it", path);
  return ok();
}

}  // namespace

Result<Listening> start_grpc_server(const ListenSpec& spec) {
  const std::string socket_path(unix_socket_path(spec.address));
  if (!socket_path.empty()) FTD_TRY(check_unix_socket_free(socket_path));
  grpc::ServerBuilder builder;
  // With SO_REUSEPORT a second daemon on the same address would start fine
  // and the kernel would split connections between the two.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (spec.configure) spec.configure(builder);
  Listening out;
  builder.AddListeningPort(spec.address,
                           spec.credentials ? spec.credentials : grpc::InsecureServerCredentials(),
                           &out.port);
  for (auto* s : spec.services) builder.RegisterService(s);
  // The socket is created (bind) inside BuildAndStart with the process umask;
  // a chmod afterwards would leave a window in which any local user could
  // connect, so the umask is tightened around it. umask is process-wide: a
  // file another thread creates meanwhile gets at most 0600 too, which is
  // harmless for a root daemon.
  const mode_t old_mask = socket_path.empty() ? 0 : ::umask(0077);
  out.server = builder.BuildAndStart();
  if (!socket_path.empty()) {
    ::umask(old_mask);
    if (out.server && ::chmod(socket_path.c_str(), 0600) != 0)
      return errno_error(fmt::format("chmod 0600 unix:{}", socket_path));
  }
  if (!out.server || out.port == 0)
    return make_error(ErrorCode::kUnavailable,
                      "cannot listen on {}: address in use by another process, not a local "
                      "address, or malformed",
                      spec.address);
  return out;
}

}  // namespace ftd
