#include "common/subprocess.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/unique_fd.h"

namespace ftd {

Subprocess::Subprocess(Subprocess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), exit_code_(o.exit_code_) {}

Subprocess& Subprocess::operator=(Subprocess&& o) noexcept {
  if (this != &o) {
    kill(SIGKILL);
    (void)wait();
    pid_ = std::exchange(o.pid_, -1);
    exit_code_ = o.exit_code_;
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exit_code_) {
    kill(SIGKILL);
    (void)wait();
  }
}

Result<Subprocess> Subprocess::spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return make_error(ErrorCode::kInvalidArgument, "empty argv");
  // Everything the child needs is prepared before fork: after fork only
  // async-signal-safe calls are allowed.
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) env_storage.emplace_back(*e);
  for (const auto& e : options.env) env_storage.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  UniqueFd log_fd;
  if (!options.log_path.empty()) {
    log_fd.reset(::open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!log_fd) return errno_error("open log " + options.log_path);
  }
  UniqueFd netns_fd;
  if (!options.netns.empty()) {
    std::string path = "/run/netns/" + options.netns;
    netns_fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns_fd) return errno_error("open netns " + path);
  }

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return errno_error("fork");
  if (pid == 0) {
    if (options.kill_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) _exit(125);  // parent died before prctl
    }
    if (netns_fd && ::setns(netns_fd.get(), CLONE_NEWNET) != 0) _exit(126);
    if (log_fd) {
      ::dup2(log_fd.get(), 1);
      ::dup2(log_fd.get(), 2);
    }
    for (int fd : options.inherit_fds) {
      int flags = ::fcntl(fd, F_GETFD);
      if (flags >= 0) ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    if (options.new_session)
      ::setsid();
    else
      ::setpgid(0, 0);  // own process group: a terminal ^C to tests does not hit it twice
    ::execvpe(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return Subprocess(pid);
}

bool Subprocess::running() {
  if (pid_ <= 0 || exit_code_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

Result<int> Subprocess::wait(std::optional<std::chrono::milliseconds> timeout) {
  if (pid_ <= 0) return make_error(ErrorCode::kFailedPrecondition, "no process");
  if (exit_code_) return *exit_code_;
  auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                          : std::chrono::steady_clock::time_point::max();
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, timeout ? WNOHANG : 0);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return *exit_code_;
    }
    if (r < 0 && errno != EINTR) return errno_error("waitpid");
    if (std::chrono::steady_clock::now() > deadline)
      return make_error(ErrorCode::kTimeout, "process {} still running", pid_);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Subprocess::kill(int sig) {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, sig);
}

Result<std::string> run_command(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout) {
  char tmpl[] = "/tmp/ftd-cmd-XXXXXX";
  UniqueFd out(::mkstemp(tmpl));
  if (!out) return errno_error("mkstemp");
  std::string path = tmpl;
  SpawnOptions opts{.argv = argv, .log_path = path};
  auto proc = Subprocess::spawn(opts);
  if (!proc) {
    ::unlink(path.c_str());
    return std::unexpected(proc.error());
  }
  auto code = proc->wait(timeout);
  std::string output;
  char buf[4096];
  ssize_t n;
  ::lseek(out.get(), 0, SEEK_SET);
  while ((n = ::read(out.get(), buf, sizeof buf)) > 0) output.append(buf, static_cast<size_t>(n));
  ::unlink(path.c_str());
  if (!code) return std::unexpected(code.error().with_context(argv[0]));
  if (*code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return make_error(ErrorCode::kIo, "`{}` exited with {}: {}", cmd, *code, output);
  }
  return output;
}

}  // namespace ftd
