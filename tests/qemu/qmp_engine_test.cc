// QmpEngine and StandbyQemu against real QEMU (BIOS only): thousands of
// stop/migrate/cont cycles, and the failure paths (QEMU dying mid-checkpoint,
// a hung QEMU, truncated or garbage device state fed to a standby).
#include "qemu/qmp_engine.h"

#include <signal.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "qemu/standby_qemu.h"
#include "qemu_test_util.h"

namespace ftd {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<QmpEngine> start_engine(const QemuConfig& c, QmpEngineOptions o = {}) {
  auto q = QemuProcess::launch(c);
  EXPECT_TRUE(q) << q.error().to_string();
  if (!q) return nullptr;
  auto e = QmpEngine::create(std::move(*q), o);
  EXPECT_TRUE(e) << e.error().to_string();
  return e ? std::move(*e) : nullptr;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

int cycles_from_env(int fallback) {
  const char* s = std::getenv("FTD_QMP_CYCLES");
  return s ? std::atoi(s) : fallback;
}

TEST(QmpEngine, ThousandsOfCheckpointsInARow) {
  testing::TempDir dir;
  auto engine = start_engine(testing::bios_only_config(dir));
  ASSERT_TRUE(engine);
  EXPECT_EQ(engine->name(), "qmp");
  EXPECT_EQ(engine->memory().size(), 128u << 20);
  const int n = cycles_from_env(2000);
  std::vector<double> stop, dev, cont;
  size_t min_bytes = SIZE_MAX, max_bytes = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(engine->pause()) << "cycle " << i;
    auto blob = engine->capture_device_state();
    ASSERT_TRUE(blob) << "cycle " << i << ": " << blob.error().to_string();
    ASSERT_TRUE(check_device_state_header(*blob)) << "cycle " << i;
    ASSERT_TRUE(engine->resume()) << "cycle " << i;
    const auto& t = engine->last_timings();
    ASSERT_EQ(t.devstate_bytes, blob->size());
    stop.push_back(t.stop_ms);
    dev.push_back(t.devstate_ms);
    cont.push_back(t.cont_ms);
    min_bytes = std::min(min_bytes, blob->size());
    max_bytes = std::max(max_bytes, blob->size());
  }
  EXPECT_EQ(engine->checkpoints(), static_cast<uint64_t>(n));
  // RAM is shared, so it is not in the stream: far below the 128 MiB of RAM.
  EXPECT_LT(max_bytes, 4u << 20);
  auto status = engine->process().qmp().execute("query-status");
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["status"], "running");
  std::printf("checkpoints=%d devstate_bytes=[%zu,%zu]\n", n, min_bytes, max_bytes);
  std::printf(
      "stop_ms p50=%.2f p99=%.2f | devstate_ms p50=%.2f p99=%.2f | cont_ms p50=%.2f "
      "p99=%.2f\n",
      percentile(stop, .5), percentile(stop, .99), percentile(dev, .5), percentile(dev, .99),
      percentile(cont, .5), percentile(cont, .99));
}

// A QEMU whose RAM is a shared file (a standby on the replica, taken over
// for re-protection) is checkpointed like a memfd guest: its RAM is the file.
TEST(QmpEngine, DrivesQemuOnASharedRamFile) {
  testing::TempDir dir;
  auto c = testing::bios_only_config(dir);
  c.ram_file = dir.file("ram");
  auto file = MappedRegion::map_file(c.ram_file, c.memory_mib << 20, true);
  ASSERT_TRUE(file);
  auto q = QemuProcess::launch(c);
  ASSERT_TRUE(q) << q.error().to_string();
  auto e = QmpEngine::create(std::move(*q));
  ASSERT_TRUE(e) << e.error().to_string();
  ASSERT_EQ((*e)->memory().size(), c.memory_mib << 20);
  ASSERT_TRUE((*e)->pause());
  auto dev = (*e)->capture_device_state();
  ASSERT_TRUE(dev) << dev.error().to_string();
  // Same pages: a byte QEMU's RAM file holds is what the engine reads
  // (written while the guest is stopped, so the BIOS cannot overwrite it).
  const size_t at = (c.memory_mib << 20) - 4096;
  (*file).bytes()[at] = std::byte{0x5a};
  EXPECT_EQ((*e)->memory()[at], std::byte{0x5a});
  ASSERT_TRUE((*e)->resume());
}

TEST(QmpEngine, QemuDeadBeforeCaptureIsAnError) {
  testing::TempDir dir;
  auto engine = start_engine(testing::bios_only_config(dir));
  ASSERT_TRUE(engine);
  ASSERT_TRUE(engine->pause());
  ::kill(engine->process().pid(), SIGKILL);
  auto start = Clock::now();
  auto blob = engine->capture_device_state();
  ASSERT_FALSE(blob);
  EXPECT_LT(ms_since(start), 3000) << blob.error().message;
  EXPECT_EQ(blob.error().code, ErrorCode::kUnavailable) << blob.error().to_string();
  EXPECT_NE(blob.error().message.find("exited"), std::string::npos) << blob.error().message;
  EXPECT_FALSE(engine->resume());
}

TEST(QmpEngine, QemuKilledMidCaptureIsAnErrorNotAHang) {
  // Kill at several points inside the capture; every one must end in an error, fast.
  for (auto delay : {0us, 500us, 1000us, 2000us, 4000us}) {
    testing::TempDir dir;
    auto engine = start_engine(testing::bios_only_config(dir));
    ASSERT_TRUE(engine);
    ASSERT_TRUE(engine->pause());
    pid_t pid = engine->process().pid();
    std::thread killer([pid, delay] {
      std::this_thread::sleep_for(delay);
      ::kill(pid, SIGKILL);
    });
    auto start = Clock::now();
    auto blob = engine->capture_device_state();
    killer.join();
    double ms = ms_since(start);
    if (blob) {
      // The capture won the race; the next operation must see the death.
      EXPECT_FALSE(engine->resume()) << "delay " << delay.count();
      continue;
    }
    EXPECT_LT(ms, 3000) << "delay " << delay.count() << ": " << blob.error().message;
    EXPECT_NE(blob.error().message.find("exited"), std::string::npos) << blob.error().message;
  }
}

TEST(QmpEngine, MigrationFailureIsReportedAtOnce) {
  testing::TempDir dir;
  auto engine = start_engine(testing::bios_only_config(dir));
  ASSERT_TRUE(engine);
  ASSERT_TRUE(engine->pause());
  // QEMU cannot reach the device-state socket any more: its migration fails
  // before connecting, which must not look like a slow QEMU.
  ASSERT_EQ(::unlink((engine->process().config().qmp_socket_path + ".devstate").c_str()), 0);
  auto start = Clock::now();
  auto blob = engine->capture_device_state();
  ASSERT_FALSE(blob);
  EXPECT_LT(ms_since(start), 2000);
  EXPECT_EQ(blob.error().code, ErrorCode::kIo) << blob.error().to_string();
  EXPECT_NE(blob.error().message.find("migration failed"), std::string::npos)
      << blob.error().message;
  std::printf("migration failure: %s\n", blob.error().to_string().c_str());
  // The guest is still under control.
  EXPECT_TRUE(engine->resume());
}

TEST(QmpEngine, HungQemuTimesOut) {
  testing::TempDir dir;
  QmpEngineOptions o;
  o.command_timeout = 300ms;
  o.devstate_timeout = 500ms;
  auto engine = start_engine(testing::bios_only_config(dir), o);
  ASSERT_TRUE(engine);
  ASSERT_TRUE(engine->pause());
  ::kill(engine->process().pid(), SIGSTOP);
  auto start = Clock::now();
  auto blob = engine->capture_device_state();
  ASSERT_FALSE(blob);
  EXPECT_EQ(blob.error().code, ErrorCode::kTimeout) << blob.error().to_string();
  EXPECT_LT(ms_since(start), 2000);
  ::kill(engine->process().pid(), SIGCONT);
}

class StandbyTest : public ::testing::Test {
 protected:
  // Captures a checkpoint of a BIOS-only primary and writes its RAM to the replica.
  void SetUp() override {
    config_ = testing::bios_only_config(dir_, "primary");
    engine_ = start_engine(config_);
    ASSERT_TRUE(engine_);
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(engine_->pause());
    auto blob = engine_->capture_device_state();
    ASSERT_TRUE(blob) << blob.error().to_string();
    device_state_ = std::move(*blob);
    replica_path_ = dir_.file("replica");
    auto replica = MappedRegion::map_file(replica_path_, engine_->memory().size(), true);
    ASSERT_TRUE(replica);
    std::memcpy(replica->data(), engine_->memory().data(), replica->size());
    engine_->process().kill();
  }

  QemuConfig standby_config() {
    auto c = testing::bios_only_config(dir_, "standby");
    c.memory_mib = config_.memory_mib;
    return c;
  }

  testing::TempDir dir_;
  QemuConfig config_;
  std::unique_ptr<QmpEngine> engine_;
  std::vector<std::byte> device_state_;
  std::string replica_path_;
};

TEST_F(StandbyTest, ActivatesFromCapturedState) {
  auto standby = StandbyQemu::prelaunch(standby_config(), replica_path_);
  ASSERT_TRUE(standby) << standby.error().to_string();
  auto status = standby->process().qmp().execute("query-status");
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["status"], "inmigrate");
  auto t = standby->activate(device_state_);
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_GT(t->load_ms, 0);
  EXPECT_GE(t->total_ms, t->load_ms + t->cont_ms);
  status = standby->process().qmp().execute("query-status");
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["status"], "running");
  std::printf("standby start_ms=%.1f load_ms=%.2f cont_ms=%.2f announce_ms=%.2f total_ms=%.2f\n",
              standby->start_ms(), t->load_ms, t->cont_ms, t->announce_ms, t->total_ms);
  auto again = standby->activate(device_state_);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kFailedPrecondition);
}

TEST_F(StandbyTest, TruncatedDeviceStateFailsClearly) {
  auto standby = StandbyQemu::prelaunch(standby_config(), replica_path_);
  ASSERT_TRUE(standby) << standby.error().to_string();
  std::span<const std::byte> cut(device_state_.data(), device_state_.size() / 2);
  auto start = Clock::now();
  auto t = standby->activate(cut, 5s);
  ASSERT_FALSE(t);
  EXPECT_LT(ms_since(start), 5500);
  // QEMU 7.2 exits when an incoming migration fails; its reason is in the error.
  EXPECT_NE(t.error().message.find("load device state"), std::string::npos) << t.error().message;
  std::printf("truncated activation error: %s\n", t.error().to_string().c_str());
}

TEST_F(StandbyTest, GarbageIsRejectedBeforeReachingQemu) {
  auto standby = StandbyQemu::prelaunch(standby_config(), replica_path_);
  ASSERT_TRUE(standby) << standby.error().to_string();
  std::vector<std::byte> garbage(1000, std::byte{0x42});
  auto t = standby->activate(garbage);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kCorrupt);
  EXPECT_TRUE(standby->process().alive());
  // The standby is still usable.
  auto ok = standby->activate(device_state_);
  EXPECT_TRUE(ok) << ok.error().to_string();
}

TEST_F(StandbyTest, WrongSizeReplicaIsRejected) {
  auto c = standby_config();
  c.memory_mib *= 2;
  auto standby = StandbyQemu::prelaunch(c, replica_path_);
  ASSERT_FALSE(standby);
  EXPECT_EQ(standby.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace ftd
