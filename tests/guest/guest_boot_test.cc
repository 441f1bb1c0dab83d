// Boots the real test guest under QEMU (TCG) in a network namespace of its own
// and talks to it over a tap: the guest must come up, serve the record protocol
// without loss, and tick on its console.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/subprocess.h"
#include "tests/guest/guest_testing.h"
#include "tests/guest/iperf_client.h"

namespace ftd::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

class GuestBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces and taps";
    auto dir = guest_dir();
    ASSERT_TRUE(dir) << dir.error().to_string();
    guest_dir_ = *dir;
    work_ = fs::temp_directory_path() / ("ftd-guest-test-" + std::to_string(::getpid()));
    fs::create_directories(work_);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    auto ns = TestNetns::create("ftdg" + std::to_string(::getpid()) + info->name());
    ASSERT_TRUE(ns) << ns.error().to_string();
    netns_.emplace(std::move(*ns));
  }
  void TearDown() override {
    qemu_.reset();  // kill QEMU before its tap's namespace goes away
    netns_.reset();
    if (!HasFailure() && !work_.empty()) fs::remove_all(work_);
  }

  // Boots and returns the time to FTD-GUEST-READY.
  double boot(const std::string& append_extra, const std::string& initrd = "initrd.img") {
    serial_ = (work_ / "serial.log").string();
    GuestBoot b{.dir = guest_dir_,
                .serial_log = serial_,
                .tap = netns_->tap(),
                .append_extra = append_extra,
                .initrd = initrd};
    auto t0 = std::chrono::steady_clock::now();
    auto q = Subprocess::spawn({.argv = guest_qemu_argv(b),
                                .log_path = (work_ / "qemu.log").string(),
                                .netns = netns_->name()});
    EXPECT_TRUE(q) << q.error().to_string();
    if (!q) return -1;
    qemu_.emplace(std::move(*q));
    auto ready = wait_for_line(serial_, "FTD-GUEST-READY", seconds(90));
    EXPECT_TRUE(ready) << ready.error().to_string() << "\nqemu running: " << qemu_->running();
    if (!ready) return -1;
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "guest.boot ms=" << ms << " line=\"" << *ready << "\"\n";
    ::testing::Test::RecordProperty("boot_ms", static_cast<int>(ms));
    return ms;
  }

  fs::path guest_dir_;
  fs::path work_;
  std::string serial_;
  std::optional<TestNetns> netns_;
  std::optional<Subprocess> qemu_;
};

fs::path record_client_path() {
  const char* b = std::getenv("FTD_BUILD_DIR");
  return fs::path(b ? b : ".") / "tools/record_client/ftd-record-client";
}

TEST_F(GuestBootTest, ServesRecordsAndTicks) {
  double boot_ms = boot("ftd.tick=1");
  ASSERT_GT(boot_ms, 0);
  EXPECT_LT(boot_ms, 60000);

  std::string json = (work_ / "client.json").string();
  auto client =
      Subprocess::spawn({.argv = {record_client_path().string(), "10.77.0.2", "--rate", "100",
                                  "--duration", "4", "--connect-timeout", "20", "--json-out", json},
                         .log_path = (work_ / "client.log").string(),
                         .netns = netns_->name()});
  ASSERT_TRUE(client) << client.error().to_string();
  auto rc = client->wait(seconds(90));
  ASSERT_TRUE(rc) << rc.error().to_string();
  std::ifstream f(json);
  auto summary = nlohmann::json::parse(f, nullptr, false);
  ASSERT_FALSE(summary.is_discarded()) << "no JSON summary in " << json;
  std::cout << "record.summary " << summary.dump() << "\n";
  EXPECT_EQ(*rc, 0);
  EXPECT_EQ(summary["ok"], true);
  EXPECT_GT(summary["received"].get<uint64_t>(), 100u);
  EXPECT_EQ(summary["lost"], 0);
  EXPECT_EQ(summary["duplicated"], 0);
  EXPECT_EQ(summary["reordered"], 0);

  // Ticks: consecutive from 1, and still advancing (5 per second of guest time).
  auto before = tick_numbers(serial_);
  std::this_thread::sleep_for(milliseconds(1500));
  auto after = tick_numbers(serial_);
  ASSERT_GE(before.size(), 10u);
  EXPECT_GT(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) ASSERT_EQ(after[i], i + 1) << "tick sequence broken";
}

TEST_F(GuestBootTest, BenchAndMemloadKnobsRun) {
  ASSERT_GT(boot("ftd.bench=4:4 ftd.memload=8:500"), 0);
  auto memload = wait_for_line(serial_, "ftd-memload start mib=8 rate=500", seconds(10));
  EXPECT_TRUE(memload) << memload.error().to_string();
  auto bench = wait_for_line(serial_, "ftd-bench iter=3 ms=", seconds(30));
  EXPECT_TRUE(bench) << bench.error().to_string();
  auto stats = wait_for_line(serial_, "ftd-memload written=", seconds(15));
  EXPECT_TRUE(stats) << stats.error().to_string();
  EXPECT_FALSE(wait_for_line(serial_, "ftd-init", milliseconds(1)));  // no init errors
}

// Debian's iperf3 in the guest (initrd-iperf.img): serves Debian's iperf3
// client with the build's key and password, and only with them.
TEST_F(GuestBootTest, IperfServerServesAuthenticatedClientsOnly) {
  ASSERT_GT(boot("ftd.iperf=5201", "initrd-iperf.img"), 0);
  EXPECT_FALSE(wait_for_line(serial_, "ftd-init", milliseconds(1)));  // no init errors
  IperfRun run{.netns = netns_->name(),
               .server_ip = "10.77.0.2",
               .guest_dir = guest_dir_.string(),
               .seconds = 2,
               .scratch_dir = work_.string()};
  for (bool reverse : {false, true}) {
    run.reverse = reverse;
    if (reverse) std::this_thread::sleep_for(kIperfServerRelisten);
    auto r = run_iperf(run);
    ASSERT_TRUE(r) << r.error().to_string();
    std::cout << "iperf reverse=" << reverse << " mbit=" << r->received_mbit_per_sec << "\n";
    EXPECT_GT(r->bytes_received, 1'000'000u);  // > 4 Mbit/s even on a loaded host
    EXPECT_GT(r->seconds, 1.5);
  }

  // The same key with a wrong password is refused.
  const fs::path wrong = work_ / "wrong-creds";
  fs::create_directories(wrong);
  fs::copy_file(guest_dir_ / "iperf3-public.pem", wrong / "iperf3-public.pem");
  std::ofstream(wrong / "iperf3-credentials") << "user=ftd\npassword=not-the-password\n";
  run.guest_dir = wrong.string();
  run.reverse = false;
  std::this_thread::sleep_for(kIperfServerRelisten);
  auto refused = run_iperf(run);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("authoriz"), std::string::npos)
      << refused.error().to_string();
}

}  // namespace
}  // namespace ftd::testing

namespace ftd::testing {
namespace {

std::string build_script() {
  const char* src = std::getenv("FTD_SOURCE_DIR");
  return (std::filesystem::path(src ? src : ".") / "deploy/guest/build-guest.sh").string();
}

TEST(BuildGuestScript, RejectsMissingOutdir) {
  auto out = run_command({build_script()});
  ASSERT_FALSE(out);
  EXPECT_NE(out.error().message.find("usage"), std::string::npos) << out.error().message;
}

TEST(BuildGuestScript, CachedBuildReturnsAtOnceAndKeepsFiles) {
  auto dir = guest_dir();
  ASSERT_TRUE(dir) << dir.error().to_string();
  auto mtime = std::filesystem::last_write_time(*dir / "initrd.img");
  auto t0 = std::chrono::steady_clock::now();
  auto out = run_command({build_script(), dir->string()});
  ASSERT_TRUE(out) << out.error().to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(std::filesystem::last_write_time(*dir / "initrd.img"), mtime);
  EXPECT_EQ(*out, "");  // nothing rebuilt, nothing said
}

}  // namespace
}  // namespace ftd::testing
