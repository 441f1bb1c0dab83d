// QemuProcess against real QEMU (BIOS only, no kernel): launch, attach, RAM
// mapping, and the start-up failures a daemon must report clearly.
#include "qemu/qemu_process.h"

#include <thread>

#include <gtest/gtest.h>

#include "qemu_test_util.h"

namespace ftd {
namespace {

using namespace std::chrono_literals;
using Json = QmpClient::Json;

TEST(QemuProcess, LaunchesAndAnswersQmp) {
  testing::TempDir dir;
  auto q = QemuProcess::launch(testing::bios_only_config(dir));
  ASSERT_TRUE(q) << q.error().to_string();
  EXPECT_GT(q->pid(), 0);
  EXPECT_GT(q->start_ms(), 0);
  EXPECT_EQ(q->ram().size(), 128u << 20);
  auto status = q->qmp().execute("query-status");
  ASSERT_TRUE(status) << status.error().to_string();
  EXPECT_EQ((*status)["status"], "running");

  auto bad = q->qmp().execute("no-such-command");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(bad.error().message.find("CommandNotFound"), std::string::npos) << bad.error().message;
  // The connection survives a QMP error.
  EXPECT_TRUE(q->qmp().execute("query-status"));
  EXPECT_TRUE(q->quit());
  EXPECT_FALSE(q->alive());
}

TEST(QemuProcess, MappedRamIsGuestRam) {
  testing::TempDir dir;
  auto q = QemuProcess::launch(testing::bios_only_config(dir));
  ASSERT_TRUE(q) << q.error().to_string();
  std::this_thread::sleep_for(300ms);  // let SeaBIOS fill low memory
  ASSERT_TRUE(q->qmp().execute("stop"));
  // QEMU's own view of guest-physical 0..1 MiB must equal our mapping.
  std::string dump = dir.file("low.bin");
  auto r = q->qmp().execute("pmemsave", Json{{"val", 0}, {"size", 1 << 20}, {"filename", dump}});
  ASSERT_TRUE(r) << r.error().to_string();
  std::string expected = testing::read_file(dump);
  ASSERT_EQ(expected.size(), 1u << 20);
  std::string mapped(reinterpret_cast<const char*>(q->ram().data()), 1 << 20);
  EXPECT_NE(expected.find_first_not_of('\0'), std::string::npos) << "BIOS wrote nothing?";
  EXPECT_TRUE(mapped == expected);
}

TEST(QemuProcess, MissingBinaryIsNotFound) {
  testing::TempDir dir;
  auto c = testing::bios_only_config(dir);
  c.qemu_binary = "/nonexistent/qemu-system-x86_64";
  auto q = QemuProcess::launch(c);
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().code, ErrorCode::kNotFound);
  c.qemu_binary = "ftd-no-such-qemu";
  q = QemuProcess::launch(c);
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().message.find("not found in PATH"), std::string::npos);
}

TEST(QemuProcess, ExitAtStartReportsLogTail) {
  testing::TempDir dir;
  auto c = testing::bios_only_config(dir);
  c.extra_args = {"-device", "ftd-no-such-device"};
  auto start = Clock::now();
  auto q = QemuProcess::launch(c);
  ASSERT_FALSE(q);
  EXPECT_LT(ms_since(start), 5000) << "should notice the exit, not wait for the start timeout";
  EXPECT_EQ(q.error().code, ErrorCode::kUnavailable) << q.error().to_string();
  EXPECT_NE(q.error().message.find("exited with status 1"), std::string::npos) << q.error().message;
  // QEMU's own complaint is in the message.
  EXPECT_NE(q.error().message.find("ftd-no-such-device"), std::string::npos) << q.error().message;
}

TEST(QemuProcess, AttachFindsMemfd) {
  testing::TempDir dir;
  auto c = testing::bios_only_config(dir);
  auto child = Subprocess::spawn(SpawnOptions{.argv = qemu_argv(c), .log_path = dir.file("log")});
  ASSERT_TRUE(child);
  auto q = QemuProcess::attach(c.qmp_socket_path, child->pid(), 10s);
  ASSERT_TRUE(q) << q.error().to_string();
  EXPECT_EQ(q->ram_bytes(), 128u << 20);
  EXPECT_EQ(q->ram().size(), 128u << 20);
  EXPECT_TRUE(q->qmp().execute("query-status"));
}

TEST(QemuProcess, AttachWithoutMemfdFailsClearly) {
  testing::TempDir dir;
  auto c = testing::bios_only_config(dir);
  c.ram_file = dir.file("ram");
  auto ram = MappedRegion::map_file(c.ram_file, c.memory_mib << 20, true);
  ASSERT_TRUE(ram);
  auto child = Subprocess::spawn(SpawnOptions{.argv = qemu_argv(c), .log_path = dir.file("log")});
  ASSERT_TRUE(child);
  auto q = QemuProcess::attach(c.qmp_socket_path, child->pid(), 10s);
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().code, ErrorCode::kNotFound) << q.error().to_string();
  EXPECT_NE(q.error().message.find("no guest RAM memfd"), std::string::npos) << q.error().message;
}

TEST(QemuProcess, AttachToMissingPidFails) {
  auto q = QemuProcess::attach("/tmp/ftd-nothing.qmp", 999999, 100ms);
  ASSERT_FALSE(q);
}

}  // namespace
}  // namespace ftd
