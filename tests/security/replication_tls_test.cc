// Real ftd daemons (synthetic engine) with mutual TLS on loopback: only the
// primary whose certificate names the configured peer may feed the replica;
// start-up refuses unsafe or duplicate listeners.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "common/subprocess.h"
#include "tests/security/test_pki.h"
#include "tests/system/daemon_harness.h"

namespace ftd::testing {
namespace {

using namespace std::chrono_literals;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool log_has(const std::filesystem::path& log, const std::string& text) {
  return slurp(log).find(text) != std::string::npos;
}

class ReplicationTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_dir_ = new TempDir();
    auto pki = TestPki::create(pki_dir_->path().string(), {"hostA", "hostB", "mallory"});
    ASSERT_TRUE(pki) << pki.error().to_string();
    pki_ = new TestPki(*pki);
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete pki_dir_;
  }

  std::string log(const std::string& name) const { return (work_.path() / name).string(); }
  std::string control(const std::string& name) const {
    return "unix:" + (work_.path() / (name + ".ctl")).string();
  }
  std::string replication_address() const { return fmt::format("127.0.0.1:{}", port_); }

  std::vector<std::string> secondary_args(const std::string& cert, std::string listen = "",
                                          std::string replica_dir = "") const {
    std::vector<std::string> a{"--role", "secondary", "--vm", "vm0", "--memory-mib", "16"};
    a.insert(a.end(), {"--listen", listen.empty() ? replication_address() : listen});
    a.insert(a.end(),
             {"--replica-dir", replica_dir.empty() ? replica_.path().string() : replica_dir});
    auto tls = pki_->flags(cert, "hostA");
    a.insert(a.end(), tls.begin(), tls.end());
    return a;
  }
  // `cert` empty: a plaintext primary.
  std::vector<std::string> primary_args(const std::string& cert) const {
    std::vector<std::string> a{"--role",       "primary", "--vm",   "vm0",
                               "--memory-mib", "16",      "--peer", replication_address(),
                               "--epoch-ms",   "40"};
    if (!cert.empty()) {
      auto tls = pki_->flags(cert, "hostB");
      a.insert(a.end(), tls.begin(), tls.end());
    }
    return a;
  }

  // The secondary gave nothing away: no stream accepted, replica untouched.
  void expect_replica_untouched(Daemon& secondary) {
    auto s = secondary.status();
    ASSERT_TRUE(s) << s.error().to_string();
    EXPECT_EQ(s->epoch(), 0u);
    EXPECT_EQ(s->state(), v1::VM_STATE_WAITING);
    EXPECT_EQ(s->peer(), "");
    EXPECT_FALSE(log_has(log("secondary.log"), "replication.accepted"));
  }

  static TempDir* pki_dir_;
  static TestPki* pki_;
  TempDir work_;
  TempDir replica_{"/dev/shm"};
  const int port_ = free_port();
};

TempDir* ReplicationTls::pki_dir_ = nullptr;
TestPki* ReplicationTls::pki_ = nullptr;

TEST_F(ReplicationTls, PrimaryWithThePinnedCertificateReachesProtected) {
  auto sec = Daemon::start(secondary_args("hostB"), control("secondary"), log("secondary.log"));
  ASSERT_TRUE(sec) << sec.error().to_string();
  auto pri = Daemon::start(primary_args("hostA"), control("primary"), log("primary.log"));
  ASSERT_TRUE(pri) << pri.error().to_string();
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = pri->status();
        return s && s->state() == v1::VM_STATE_PROTECTED && s->acked_epoch() >= 3;
      },
      60s))
      << slurp(log("primary.log"));
  auto s = sec->status();
  ASSERT_TRUE(s);
  EXPECT_GE(s->epoch(), 3u);
  EXPECT_TRUE(log_has(log("secondary.log"), "tls=peer=hostA"));
}

TEST_F(ReplicationTls, PlaintextPrimaryFailsTheHandshake) {
  auto sec = Daemon::start(secondary_args("hostB"), control("secondary"), log("secondary.log"));
  ASSERT_TRUE(sec) << sec.error().to_string();
  auto pri = Daemon::start(primary_args(""), control("primary"), log("primary.log"));
  ASSERT_TRUE(pri) << pri.error().to_string();
  // gRPC logs the failed handshake itself; nothing reaches ftd's handler.
  ASSERT_TRUE(wait_until([&] { return log_has(log("secondary.log"), "Handshake failed"); }, 20s))
      << slurp(log("secondary.log"));
  std::this_thread::sleep_for(1s);
  expect_replica_untouched(*sec);
  auto p = pri->status();
  ASSERT_TRUE(p);
  EXPECT_NE(p->state(), v1::VM_STATE_PROTECTED);
  EXPECT_EQ(p->acked_epoch(), 0u);
}

TEST_F(ReplicationTls, PrimaryWithAnotherNameFromTheSameCaIsRejected) {
  auto sec = Daemon::start(secondary_args("hostB"), control("secondary"), log("secondary.log"));
  ASSERT_TRUE(sec) << sec.error().to_string();
  auto pri = Daemon::start(primary_args("mallory"), control("primary"), log("primary.log"));
  ASSERT_TRUE(pri) << pri.error().to_string();
  ASSERT_TRUE(wait_until(
      [&] { return log_has(log("secondary.log"), "replication.rejected peer=ipv4:127.0.0.1:"); },
      20s))
      << slurp(log("secondary.log"));
  const std::string sec_log = slurp(log("secondary.log"));
  EXPECT_NE(sec_log.find("identity=mallory reason="), std::string::npos) << sec_log;
  std::this_thread::sleep_for(1s);
  expect_replica_untouched(*sec);
  // The primary is told why.
  EXPECT_TRUE(log_has(log("primary.log"), "accepts only 'hostA'"));
}

TEST_F(ReplicationTls, PrimaryRefusesASecondaryWithTheWrongName) {
  // An impostor secondary with a valid certificate for another name.
  auto sec = Daemon::start(secondary_args("mallory"), control("secondary"), log("secondary.log"));
  ASSERT_TRUE(sec) << sec.error().to_string();
  auto pri = Daemon::start(primary_args("hostA"), control("primary"), log("primary.log"));
  ASSERT_TRUE(pri) << pri.error().to_string();
  std::this_thread::sleep_for(3s);
  expect_replica_untouched(*sec);
  auto p = pri->status();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->acked_epoch(), 0u);
}

// Exit code of a daemon expected to refuse to start; its log in `log_path`.
int refused_start(std::vector<std::string> args, const std::string& control,
                  const std::string& log_path) {
  args.insert(args.begin(), built_binary("daemon/ftd"));
  args.insert(args.end(), {"--control", control});
  auto p = Subprocess::spawn({.argv = args, .log_path = log_path});
  if (!p) return -1;
  auto code = p->wait(20s);
  return code ? *code : -2;
}

TEST_F(ReplicationTls, SecondDaemonOnTheSameAddressRefusesToStart) {
  auto sec = Daemon::start(secondary_args("hostB"), control("secondary"), log("secondary.log"));
  ASSERT_TRUE(sec) << sec.error().to_string();
  TempDir other_replica("/dev/shm");
  const std::string other_dir = other_replica.path().string();
  EXPECT_NE(
      refused_start(secondary_args("hostB", "", other_dir), control("second"), log("second.log")),
      0);
  EXPECT_TRUE(log_has(log("second.log"), "cannot listen on " + replication_address()))
      << slurp(log("second.log"));
  // Same control socket, another replication port: refused too, and the
  // first daemon keeps its socket.
  const std::string other_port = fmt::format("127.0.0.1:{}", free_port());
  EXPECT_NE(refused_start(secondary_args("hostB", other_port, other_dir), control("secondary"),
                          log("third.log")),
            0);
  EXPECT_TRUE(log_has(log("third.log"), "is in use")) << slurp(log("third.log"));
  EXPECT_TRUE(sec->status());
}

TEST_F(ReplicationTls, ControlSocketIsOwnerOnly) {
  auto sec = Daemon::start(secondary_args("hostB"), control("secondary"), log("secondary.log"));
  ASSERT_TRUE(sec) << sec.error().to_string();
  struct stat st {};
  ASSERT_EQ(::stat((work_.path() / "secondary.ctl").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(ReplicationTls, ReachableAddressWithoutTlsRefusesToStart) {
  const std::string port = std::to_string(free_port());
  const std::vector<std::string> vm{"--vm", "vm0", "--memory-mib", "16"};
  std::vector<std::string> sec = vm;
  sec.insert(sec.end(), {"--role", "secondary", "--listen", "0.0.0.0:" + port, "--replica-dir",
                         replica_.path().string()});
  EXPECT_EQ(refused_start(sec, control("s"), log("s.log")), 2);
  EXPECT_TRUE(log_has(log("s.log"), "--listen 0.0.0.0:" + port + " is reachable from other hosts"))
      << slurp(log("s.log"));

  std::vector<std::string> pri = vm;
  pri.insert(pri.end(), {"--role", "primary", "--peer", "192.0.2.7:7400"});
  EXPECT_EQ(refused_start(pri, control("p"), log("p.log")), 2);
  EXPECT_TRUE(log_has(log("p.log"), "--peer 192.0.2.7:7400 is reachable from other hosts"));

  // A TCP control address needs TLS even on loopback.
  std::vector<std::string> ctl = vm;
  ctl.insert(ctl.end(), {"--role", "primary", "--peer", replication_address()});
  EXPECT_EQ(refused_start(ctl, "127.0.0.1:" + port, log("c.log")), 2);
  EXPECT_TRUE(log_has(log("c.log"), "--control 127.0.0.1:" + port + " is a TCP address"));

  // --insecure is the explicit way to run plaintext there.
  sec.push_back("--insecure");
  auto started = Daemon::start(sec, control("s2"), log("s2.log"));
  ASSERT_TRUE(started) << started.error().to_string() << slurp(log("s2.log"));
}

TEST_F(ReplicationTls, TcpControlNeedsAClientCertificateAndLogsTheCaller) {
  const std::string ctl = fmt::format("127.0.0.1:{}", free_port());
  auto args = secondary_args("hostB");
  args.insert(args.begin(), built_binary("daemon/ftd"));
  args.insert(args.end(), {"--control", ctl});
  auto daemon = Subprocess::spawn({.argv = args, .log_path = log("secondary.log")});
  ASSERT_TRUE(daemon) << daemon.error().to_string();
  const auto ca = pki_->files("hostA");
  const std::vector<std::string> with_cert{built_binary("tools/ftctl/ftctl"),
                                           "--control",
                                           ctl,
                                           "--timeout",
                                           "3",
                                           "--tls-cert",
                                           ca.cert,
                                           "--tls-key",
                                           ca.key,
                                           "--tls-ca",
                                           ca.ca,
                                           "--peer-identity",
                                           "hostB"};
  auto status = with_cert;
  status.push_back("status");
  ASSERT_TRUE(wait_until([&] { return run_command(status).has_value(); }, 20s))
      << slurp(log("secondary.log"));
  // Plaintext to the TLS control port fails.
  auto plain = run_command(
      {built_binary("tools/ftctl/ftctl"), "--control", ctl, "--timeout", "2", "status"});
  EXPECT_FALSE(plain);
  // A state-changing call is logged with the certificate's name (it fails:
  // nothing was replicated yet).
  auto failover = with_cert;
  failover.push_back("failover");
  EXPECT_FALSE(run_command(failover));
  EXPECT_TRUE(wait_until(
      [&] {
        return log_has(log("secondary.log"), "control.call method=failover vm=(default) peer=") &&
               log_has(log("secondary.log"), "identity=hostA");
      },
      5s))
      << slurp(log("secondary.log"));
}

}  // namespace
}  // namespace ftd::testing
