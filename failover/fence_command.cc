#include "failover/fence_command.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/subprocess.h"
#include "common/unique_fd.h"

namespace ftd {
namespace {

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ::lseek(fd, 0, SEEK_SET);
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && out.size() < 4096)
    out.append(buf, static_cast<size_t>(n));
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

std::string FenceCommand::describe() const {
  std::string s;
  for (const auto& a : argv_) s += (s.empty() ? "" : " ") + a;
  return s;
}

Result<FenceResult> FenceCommand::run(const FenceTarget& target) const {
  if (argv_.empty()) return make_error(ErrorCode::kInvalidArgument, "fence command: empty");
  char tmpl[] = "/tmp/ftd-fence-XXXXXX";
  UniqueFd out(::mkstemp(tmpl));
  if (!out) return errno_error("mkstemp");
  const std::string log_path = tmpl;
  ::unlink(tmpl);  // the open fd keeps it readable; nothing left behind
  SpawnOptions opts{.argv = argv_, .log_path = "/proc/self/fd/" + std::to_string(out.get())};
  opts.argv.push_back(target.peer);
  opts.env = {"FTD_VM=" + target.vm, "FTD_PEER=" + target.peer,
              "FTD_PEER_ADDRESS=" + target.peer_address};
  const auto start = std::chrono::steady_clock::now();
  FTD_ASSIGN_OR_RETURN(Subprocess proc, Subprocess::spawn(opts));
  auto code = proc.wait(time_limit_);
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  if (!code) {
    // The child leads its own process group (Subprocess does setpgid):
    // kill the group so a hung `ssh`/`ipmitool` grandchild dies too.
    ::kill(-proc.pid(), SIGKILL);
    (void)proc.wait();
    return make_error(
        ErrorCode::kTimeout,
        "fence command `{}` for peer {} hung for {} ms (limit {} ms): killed; output: {}",
        describe(), target.peer, elapsed.count(), time_limit_.count(), read_all(out.get()));
  }
  FenceResult r{.exit_code = *code, .elapsed = elapsed, .output = read_all(out.get())};
  if (r.exit_code != 0)
    return make_error(ErrorCode::kFailedPrecondition,
                      "fence command `{}` for peer {} exited with {} after {} ms: {}", describe(),
                      target.peer, r.exit_code, elapsed.count(), r.output);
  return r;
}

}  // namespace ftd
