// A second secondary daemon pointed at a replica directory that a running one
// owns must refuse to start with an error naming the owner — never two
// processes writing one replica file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/system/daemon_harness.h"

namespace ftd::testing {
namespace {

std::vector<std::string> secondary_args(int port, const std::string& replica_dir) {
  return {"--role",        "secondary", "--vm",     "vm0",
          "--memory-mib",  "16",        "--listen", fmt::format("127.0.0.1:{}", port),
          "--replica-dir", replica_dir};
}

TEST(ExclusiveReplica, SecondDaemonOnTheSameReplicaRefusesNamingTheOwner) {
  TempDir work;
  TempDir replica_dir("/dev/shm");
  const std::string first_log = (work.path() / "first.log").string();
  auto first = Daemon::start(secondary_args(free_port(), replica_dir.path().string()),
                             "unix:" + (work.path() / "first.ctl").string(), first_log);
  ASSERT_TRUE(first) << first.error().to_string() << "\n" << slurp(first_log);

  const std::string second_log = (work.path() / "second.log").string();
  auto second = Daemon::start(secondary_args(free_port(), replica_dir.path().string()),
                              "unix:" + (work.path() / "second.ctl").string(), second_log);
  EXPECT_FALSE(second) << "a second owner of the replica started";
  const std::string log = slurp(second_log);
  EXPECT_NE(log.find("in use by pid " + std::to_string(first->process().pid())), std::string::npos)
      << log;
  // The owner is unaffected.
  EXPECT_TRUE(first->status());
}

}  // namespace
}  // namespace ftd::testing
