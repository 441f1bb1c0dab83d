#include "qemu/qemu_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>

#include <fstream>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "qemu/guest_memfd.h"
#include "qemu/qemu_identity.h"

namespace ftd {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

Status check_binary(const std::string& binary) {
  if (binary.find('/') != std::string::npos) {
    if (::access(binary.c_str(), X_OK) == 0) return ok();
    return make_error(ErrorCode::kNotFound, "QEMU binary {} is missing or not executable", binary);
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (::access((dir + "/" + binary).c_str(), X_OK) == 0) return ok();
  }
  return make_error(ErrorCode::kNotFound, "QEMU binary {} not found in PATH", binary);
}

}  // namespace

Result<QemuProcess> QemuProcess::launch(const QemuConfig& config) {
  if (config.qmp_socket_path.empty())
    return make_error(ErrorCode::kInvalidArgument, "QemuConfig.qmp_socket_path is required");
  if (config.memory_mib == 0)
    return make_error(ErrorCode::kInvalidArgument, "QemuConfig.memory_mib must be > 0");
  FTD_TRY(check_binary(config.qemu_binary));
  // A stale socket file from an earlier run must not be mistaken for ours.
  ::unlink(config.qmp_socket_path.c_str());

  QemuProcess q;
  q.config_ = config;
  auto argv = qemu_argv(config);
  std::string cmdline;
  for (const auto& a : argv) cmdline += (cmdline.empty() ? "" : " ") + a;
  {
    std::ofstream log(config.effective_log_path(), std::ios::app);
    log << "ftd: starting " << cmdline << "\n";
  }
  std::vector<std::string> env;
  if (!config.uffd_preload_library.empty()) {
    // Not fatal: without it the uffd-wp tracker is unavailable and ftd scans.
    if (::access(config.uffd_preload_library.c_str(), R_OK) == 0)
      env = {"LD_PRELOAD=" + config.uffd_preload_library,
             fmt::format("FTD_UFFD_FD={}", config.uffd_fd)};
    else
      spdlog::warn("qemu.uffd_preload_missing path={}", config.uffd_preload_library);
  }
  auto start = Clock::now();
  if (!config.pid_file.empty()) ::unlink(config.pid_file.c_str());  // a dead QEMU's
  FTD_ASSIGN_OR_RETURN(Subprocess child,
                       Subprocess::spawn(SpawnOptions{
                           .argv = argv,
                           .env = env,
                           .log_path = config.effective_log_path(),
                           .netns = config.netns,
                           .kill_with_parent = config.kill_with_daemon && !config.survive_daemon,
                           .new_session = config.survive_daemon}));
  q.pid_ = child.pid();
  q.child_.emplace(std::move(child));
  auto qmp = QmpClient::connect(config.qmp_socket_path, deadline_after(config.start_timeout),
                                [&q] { return q.child_->running(); });
  if (!qmp) return std::unexpected(q.explain(qmp.error().with_context("starting QEMU")));
  q.qmp_ = std::move(*qmp);
  q.start_ms_ = ms_since(start);
  q.ram_bytes_ = config.memory_mib * kMiB;
  if (config.ram_file.empty())
    FTD_TRY(q.map_guest_ram(q.ram_bytes_));
  else
    FTD_TRY(q.map_guest_ram_file(config.ram_file));
  spdlog::info("qemu.started pid={} ms={:.1f} ram_mib={} ram={}", q.pid_, q.start_ms_,
               config.memory_mib, config.ram_file.empty() ? "memfd" : config.ram_file);
  return q;
}

Result<QemuProcess> QemuProcess::attach(const std::string& qmp_socket_path, pid_t pid,
                                        std::chrono::milliseconds timeout) {
  if (::kill(pid, 0) != 0) return errno_error(fmt::format("QEMU pid {}", pid));
  QemuProcess q;
  q.config_.qmp_socket_path = qmp_socket_path;
  q.pid_ = pid;
  FTD_ASSIGN_OR_RETURN(q.qmp_, QmpClient::connect(qmp_socket_path, deadline_after(timeout)));
  FTD_ASSIGN_OR_RETURN(auto summary, q.qmp_.execute("query-memory-size-summary"));
  auto base_memory = qmp_uint(summary, "base-memory");
  if (!base_memory || *base_memory == 0) {
    return make_error(ErrorCode::kCorrupt,
                      "QEMU pid {}: query-memory-size-summary has no usable base-memory "
                      "(a positive integer): {:.200}",
                      pid, summary.dump());
  }
  q.ram_bytes_ = *base_memory;
  q.config_.memory_mib = q.ram_bytes_ / kMiB;
  FTD_TRY(q.map_guest_ram(q.ram_bytes_));
  spdlog::info("qemu.attached pid={} ram_bytes={}", pid, q.ram_bytes_);
  return q;
}

Result<QemuProcess> QemuProcess::reattach(const QemuConfig& config, pid_t pid, bool adopt,
                                          std::chrono::milliseconds timeout) {
  QemuProcess q;
  q.config_ = config;
  q.pid_ = pid;
  FTD_ASSIGN_OR_RETURN(q.pidfd_, open_qemu_pidfd(pid, config.qmp_socket_path));
  q.adopted_ = adopt;
  auto qmp = QmpClient::connect(config.qmp_socket_path, deadline_after(timeout),
                                [&q] { return q.alive(); });
  if (!qmp) return std::unexpected(q.explain(qmp.error().with_context("re-attaching to QEMU")));
  q.qmp_ = std::move(*qmp);
  FTD_ASSIGN_OR_RETURN(auto summary, q.qmp_.execute("query-memory-size-summary"));
  q.ram_bytes_ = summary.value("base-memory", uint64_t{0});
  if (config.memory_mib != 0 && q.ram_bytes_ != config.memory_mib * kMiB)
    return make_error(ErrorCode::kFailedPrecondition,
                      "QEMU pid {} has {} MiB of guest RAM, the options say {} MiB", pid,
                      q.ram_bytes_ / kMiB, config.memory_mib);
  q.config_.memory_mib = q.ram_bytes_ / kMiB;
  // An activated standby's RAM is the replica image it was launched on, not
  // a memfd: its command line says which file.
  if (q.config_.ram_file.empty()) q.config_.ram_file = qemu_ram_file(pid).value_or("");
  if (q.config_.ram_file.empty())
    FTD_TRY(q.map_guest_ram(q.ram_bytes_));
  else
    FTD_TRY(q.map_guest_ram_file(q.config_.ram_file));
  spdlog::info("qemu.reattached pid={} ram_mib={} uffd={} adopted={}", pid, q.config_.memory_mib,
               q.uffd_fd_in_qemu() ? "found" : "none", adopt);
  return q;
}

QemuProcess::~QemuProcess() {
  // Only an adopted QEMU: a launched one dies with child_, an attached one is not ours.
  if (adopted_ && pidfd_) {
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
    spdlog::info("qemu.killed pid={} why=\"daemon stopping (re-attached QEMU)\"", pid_);
  }
}

Status QemuProcess::map_guest_ram(std::optional<uint64_t> expected_size) {
  auto memfd = find_guest_memfd(pid_, expected_size);
  if (!memfd) return std::unexpected(explain(memfd.error()));
  FTD_ASSIGN_OR_RETURN(ram_, MappedRegion::map_fd(memfd->fd.get(), memfd->size, false));
  ram_bytes_ = memfd->size;
  struct stat st {};
  if (::fstat(memfd->fd.get(), &st) == 0) ram_inode_ = static_cast<uint64_t>(st.st_ino);
  return ok();
}

Status QemuProcess::map_guest_ram_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open guest RAM file " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat guest RAM file " + path);
  if (static_cast<uint64_t>(st.st_size) != ram_bytes_)
    return make_error(ErrorCode::kFailedPrecondition, "guest RAM file {} has {} bytes, QEMU {}",
                      path, st.st_size, ram_bytes_);
  FTD_ASSIGN_OR_RETURN(ram_, MappedRegion::map_fd(fd.get(), ram_bytes_, false));
  ram_inode_ = static_cast<uint64_t>(st.st_ino);
  return ok();
}

std::optional<int> QemuProcess::uffd_fd_in_qemu() const {
  if ((!child_ && !pidfd_) || config_.uffd_preload_library.empty()) return std::nullopt;
  std::error_code ec;
  auto target =
      std::filesystem::read_symlink(fmt::format("/proc/{}/fd/{}", pid_, config_.uffd_fd), ec);
  if (ec || target.string() != "anon_inode:[userfaultfd]") return std::nullopt;
  return config_.uffd_fd;
}

bool QemuProcess::alive() {
  if (child_) return child_->running();
  if (pidfd_) return !pidfd_exited(pidfd_.get());
  return pid_ > 0 && ::kill(pid_, 0) == 0;
}

std::string QemuProcess::log_tail(size_t max_bytes) const {
  std::ifstream f(config_.effective_log_path(), std::ios::binary);
  if (!f) return {};
  f.seekg(0, std::ios::end);
  auto size = static_cast<size_t>(f.tellg());
  size_t from = size > max_bytes ? size - max_bytes : 0;
  f.seekg(static_cast<std::streamoff>(from));
  std::string tail(size - from, '\0');
  f.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  return tail;
}

Error QemuProcess::explain(const Error& error,
                           std::optional<std::chrono::milliseconds> exit_grace) {
  std::string exit_info;
  auto grace =
      exit_grace.value_or(error.code == ErrorCode::kUnavailable ? std::chrono::milliseconds(500)
                                                                : std::chrono::milliseconds(0));
  if (child_ && grace.count() > 0) {
    // The connection dropped: QEMU is probably exiting; give it a moment to be
    // reaped so the exit code is known.
    if (auto code = child_->wait(grace); code) exit_info = fmt::format(" with status {}", *code);
  }
  if (alive()) return error;
  if (child_ && exit_info.empty()) {
    if (auto code = child_->wait(std::chrono::milliseconds(0)); code)
      exit_info = fmt::format(" with status {}", *code);
  }
  return Error{ErrorCode::kUnavailable, fmt::format("QEMU pid {} exited{} ({}); QEMU log tail:\n{}",
                                                    pid_, exit_info, error.message, log_tail())};
}

Status QemuProcess::quit(std::chrono::milliseconds timeout) {
  auto r = qmp_.execute("quit", QmpClient::Json::object(), timeout);
  if (!r && r.error().code != ErrorCode::kUnavailable)
    spdlog::warn("qemu.quit {}", r.error().message);
  if (child_) {
    if (auto code = child_->wait(timeout); !code) {
      child_->kill(SIGKILL);
      (void)child_->wait();
      return make_error(ErrorCode::kTimeout, "QEMU pid {} did not quit; killed", pid_);
    }
    return ok();
  }
  auto deadline = deadline_after(timeout);
  while (alive()) {
    if (Clock::now() > deadline)
      return make_error(ErrorCode::kTimeout, "QEMU pid {} did not quit", pid_);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return ok();
}

void QemuProcess::kill() {
  if (child_) {
    child_->kill(SIGKILL);
    (void)child_->wait();
  } else if (pidfd_) {
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  } else if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
  }
}

}  // namespace ftd
