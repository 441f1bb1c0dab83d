#include "qemu/qemu_identity.h"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "qemu/qemu_opts.h"

namespace ftd {
namespace {

// /proc/<pid>/cmdline as arguments (empty for a zombie).
std::vector<std::string> cmdline_of(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
  return args;
}

}  // namespace

bool pidfd_exited(int pidfd) {
  pollfd p{.fd = pidfd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP)) != 0;
}

Result<UniqueFd> open_qemu_pidfd(pid_t pid, const std::string& qmp_socket_path) {
  if (pid <= 0) return make_error(ErrorCode::kInvalidArgument, "bad QEMU pid {}", pid);
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    if (errno == ESRCH) return make_error(ErrorCode::kNotFound, "QEMU pid {} is gone", pid);
    return errno_error(fmt::format("pidfd_open({})", pid));
  }
  // Read after the pidfd exists: if the pid was reused meanwhile, the pidfd
  // and this command line both belong to the newcomer, which fails the check.
  auto args = cmdline_of(pid);
  if (pidfd_exited(pidfd.get()) || args.empty())
    return make_error(ErrorCode::kNotFound, "QEMU pid {} is gone (exited)", pid);
  if (args[0].find("qemu") == std::string::npos)
    return make_error(ErrorCode::kNotFound, "pid {} is '{}', not a QEMU (pid reused)", pid,
                      args[0]);
  const std::string qmp_arg = fmt::format("unix:{},", qemu_opt_escape(qmp_socket_path));
  for (const auto& a : args)
    if (a.starts_with(qmp_arg)) return pidfd;
  return make_error(ErrorCode::kNotFound,
                    "pid {} is a QEMU, but not this VM's (its command line does not name QMP "
                    "socket {})",
                    pid, qmp_socket_path);
}

RunDirQemu find_run_dir_qemu(const std::string& pid_file, const std::string& qmp_socket_path) {
  std::ifstream in(pid_file);
  if (!in) return {.kind = RunDirQemu::Kind::kNone, .detail = "no pid file " + pid_file};
  std::string text;
  std::getline(in, text);
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
  if (ec != std::errc() || pid <= 0)
    return {.kind = RunDirQemu::Kind::kStale,
            .detail = fmt::format("pid file {} holds '{}', not a pid", pid_file, text)};
  auto pidfd = open_qemu_pidfd(pid, qmp_socket_path);
  if (!pidfd)
    return {.kind = RunDirQemu::Kind::kStale,
            .pid = pid,
            .detail = fmt::format("stale pid file {}: {}", pid_file, pidfd.error().message)};
  return {.kind = RunDirQemu::Kind::kLive, .pid = pid};
}

std::optional<std::string> qemu_ram_file(pid_t pid) {
  for (const auto& arg : cmdline_of(pid)) {
    if (!arg.starts_with("memory-backend-file,")) continue;
    auto props = parse_qemu_props(arg, "qom-type");
    if (!props) continue;
    if (auto it = props->find("mem-path"); it != props->end()) return it->second;
  }
  return std::nullopt;
}

}  // namespace ftd
