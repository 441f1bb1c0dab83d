// A real ftd under a stand-in for systemd's notify socket: READY=1 only once
// its control socket answers, a STATUS= line for each state change
// (waiting → protected → active after a failover), STOPPING=1 on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <fstream>
#include <sstream>

#include "common/unique_fd.h"
#include "tests/system/daemon_harness.h"

namespace ftd::testing {
namespace {

// The receiving end of $NOTIFY_SOCKET: a unix datagram socket, as systemd binds it.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof a.sun_path - 1);
    bound_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{.tv_sec = 1, .tv_usec = 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  bool bound() const { return bound_; }
  // Messages until one contains `needle` (returned) or `timeout` passes (nullopt).
  std::optional<std::string> wait_for(const std::string& needle, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      char buf[4096];
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n <= 0) continue;
      std::string message(buf, static_cast<size_t>(n));
      seen_.push_back(message);
      if (message.find(needle) != std::string::npos) return message;
    }
    return std::nullopt;
  }
  std::string seen() const {
    std::string all;
    for (const auto& m : seen_) all += "[" + m + "] ";
    return all;
  }

 private:
  std::string path_;
  UniqueFd fd_;
  bool bound_ = false;
  std::vector<std::string> seen_;
};

TEST(ServiceNotify, ReadyAfterControlServesStatusOnRoleChangesStoppingOnSigterm) {
  TempDir work;
  TempDir replica_dir("/dev/shm");
  NotifySocket notify((work.path() / "notify.sock").string());
  ASSERT_TRUE(notify.bound());
  const int port = free_port();
  const std::string control = "unix:" + (work.path() / "secondary.ctl").string();
  const std::string log = (work.path() / "secondary.log").string();
  auto secondary = Subprocess::spawn(
      {.argv = {built_binary("daemon/ftd"), "--role", "secondary", "--vm", "vm0", "--memory-mib",
                "16", "--listen", fmt::format("127.0.0.1:{}", port), "--replica-dir",
                replica_dir.path().string(), "--control", control},
       .env = {"NOTIFY_SOCKET=" + (work.path() / "notify.sock").string()},
       .log_path = log});
  ASSERT_TRUE(secondary) << secondary.error().to_string();

  auto ready = notify.wait_for("READY=1", std::chrono::seconds(30));
  ASSERT_TRUE(ready) << notify.seen() << "\n" << slurp(log);
  EXPECT_NE(ready->find("STATUS=vm=vm0 role=secondary state=waiting"), std::string::npos) << *ready;
  // Ready means served: one status call, no retry.
  auto status = run_command({built_binary("tools/ftctl/ftctl"), "-c", control, "status", "--json"},
                            std::chrono::seconds(10));
  ASSERT_TRUE(status) << status.error().to_string();
  EXPECT_NE(status->find("\"role\":\"secondary\""), std::string::npos) << *status;

  auto primary = Daemon::start({"--role", "primary", "--vm", "vm0", "--memory-mib", "16", "--peer",
                                fmt::format("127.0.0.1:{}", port), "--epoch-ms", "30"},
                               "unix:" + (work.path() / "primary.ctl").string(),
                               (work.path() / "primary.log").string());
  ASSERT_TRUE(primary) << primary.error().to_string();
  ASSERT_TRUE(wait_for_acked_epoch(*primary, 5, std::chrono::seconds(60)));
  EXPECT_TRUE(
      notify.wait_for("STATUS=vm=vm0 role=secondary state=protected", std::chrono::seconds(10)))
      << notify.seen();

  primary->process().kill(SIGKILL);
  auto failover = run_command({built_binary("tools/ftctl/ftctl"), "-c", control, "failover"},
                              std::chrono::seconds(30));
  ASSERT_TRUE(failover) << failover.error().to_string() << "\n" << slurp(log);
  auto active = notify.wait_for("state=active", std::chrono::seconds(10));
  EXPECT_TRUE(active) << notify.seen();
  EXPECT_NE(slurp(log).find("ftd.role_change"), std::string::npos);

  secondary->kill(SIGTERM);
  EXPECT_TRUE(notify.wait_for("STOPPING=1", std::chrono::seconds(10))) << notify.seen();
  auto exit_code = secondary->wait(std::chrono::seconds(20));
  ASSERT_TRUE(exit_code);
  EXPECT_EQ(*exit_code, 0) << slurp(log);
}

}  // namespace
}  // namespace ftd::testing
