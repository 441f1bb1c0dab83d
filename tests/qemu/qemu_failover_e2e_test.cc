// End to end on a real Linux guest: run it under QmpEngine, take checkpoints
// (RAM copied to a replica file on tmpfs + device state), SIGKILL the primary
// QEMU, activate a prelaunched StandbyQemu on the replica, and check that the
// guest's serial tick counter continues exactly from the checkpoint.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "qemu/qmp_engine.h"
#include "qemu/standby_qemu.h"
#include "qemu_test_util.h"
#include "tests/guest/guest_testing.h"

namespace ftd {
namespace {

using namespace std::chrono_literals;

// Waits until the serial log holds at least `n` ticks after `after`.
bool wait_for_ticks(const std::string& log, long after, size_t n, std::chrono::seconds timeout) {
  auto deadline = deadline_after(timeout);
  while (Clock::now() < deadline) {
    auto t = testing::ticks_in(testing::read_file(log));
    if (std::count_if(t.begin(), t.end(), [&](long v) { return v > after; }) >=
        static_cast<long>(n))
      return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST(QemuFailoverE2E, StandbyContinuesFromCheckpoint) {
  auto guest_path = testing::guest_dir();
  ASSERT_TRUE(guest_path) << guest_path.error().to_string()
                          << " (build it: ninja guest, or deploy/guest/build-guest.sh <dir>)";
  std::string guest = guest_path->string();
  testing::TempDir dir;
  // Replica on tmpfs, as on a real secondary.
  std::string replica_path = "/dev/shm/ftd-e2e-replica-" + std::to_string(::getpid());
  struct Unlink {
    std::string p;
    ~Unlink() { ::unlink(p.c_str()); }
  } unlink_replica{replica_path};

  // Both QEMUs get a NIC whose peer (normally the output-commit proxy) is a socket we own.
  auto nic_primary = UnixListener::listen(dir.file("nic-primary"));
  auto nic_standby = UnixListener::listen(dir.file("nic-standby"));
  ASSERT_TRUE(nic_primary && nic_standby);

  QemuConfig primary;
  primary.memory_mib = 256;
  primary.kernel = guest + "/vmlinuz";
  primary.initrd = guest + "/initrd.img";
  primary.append = "console=ttyS0 ftd.tick=1";
  primary.qmp_socket_path = dir.file("primary.qmp");
  primary.serial_log_path = dir.file("primary.serial");
  primary.nic = QemuNic{.socket_path = nic_primary->path()};

  auto q = QemuProcess::launch(primary);
  ASSERT_TRUE(q) << q.error().to_string();
  auto engine_r = QmpEngine::create(std::move(*q));
  ASSERT_TRUE(engine_r) << engine_r.error().to_string();
  auto& engine = **engine_r;
  ASSERT_TRUE(wait_for_ticks(primary.serial_log_path, -1, 5, 90s))
      << "guest did not tick; serial log:\n"
      << testing::read_file(primary.serial_log_path);

  auto replica = MappedRegion::map_file(replica_path, engine.memory().size(), true);
  ASSERT_TRUE(replica) << replica.error().to_string();

  // Checkpoints at ~20 Hz; the last one is what the secondary holds.
  std::vector<std::byte> device_state;
  std::string serial_at_checkpoint;
  std::vector<double> stop, dev, cont, copy;
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(engine.pause());
    auto blob = engine.capture_device_state();
    ASSERT_TRUE(blob) << blob.error().to_string();
    auto copy_start = Clock::now();
    std::memcpy(replica->data(), engine.memory().data(), replica->size());
    copy.push_back(ms_since(copy_start));
    // The serial file is written synchronously by QEMU: while paused it is
    // exactly what the guest had sent at this checkpoint.
    serial_at_checkpoint = testing::read_file(primary.serial_log_path);
    device_state = std::move(*blob);
    ASSERT_TRUE(engine.resume());
    const auto& t = engine.last_timings();
    stop.push_back(t.stop_ms);
    dev.push_back(t.devstate_ms);
    cont.push_back(t.cont_ms);
    std::this_thread::sleep_for(50ms);
  }
  auto ticks_at_checkpoint = testing::ticks_in(serial_at_checkpoint);
  ASSERT_FALSE(ticks_at_checkpoint.empty());
  long checkpoint_tick = ticks_at_checkpoint.back();

  // The primary runs on past the checkpoint, then its host "dies".
  ASSERT_TRUE(wait_for_ticks(primary.serial_log_path, checkpoint_tick, 5, 30s));
  engine.process().kill();
  long primary_last = testing::ticks_in(testing::read_file(primary.serial_log_path)).back();

  QemuConfig standby_config = primary;
  standby_config.qmp_socket_path = dir.file("standby.qmp");
  standby_config.serial_log_path = dir.file("standby.serial");
  standby_config.nic = QemuNic{.socket_path = nic_standby->path()};
  auto standby = StandbyQemu::prelaunch(standby_config, replica_path);
  ASSERT_TRUE(standby) << standby.error().to_string();
  auto activation = standby->activate(device_state);
  ASSERT_TRUE(activation) << activation.error().to_string();

  ASSERT_TRUE(wait_for_ticks(standby_config.serial_log_path, -1, 5, 30s))
      << "standby guest did not tick; serial log:\n"
      << testing::read_file(standby_config.serial_log_path) << "\nQEMU log:\n"
      << standby->process().log_tail();
  std::string standby_serial = testing::read_file(standby_config.serial_log_path);
  // A line cut by the checkpoint is finished by the standby, so the two logs
  // joined must be one unbroken count: no gap, no repeat, no restart from 0.
  auto joined = testing::ticks_in(serial_at_checkpoint + standby_serial);
  for (size_t i = 1; i < joined.size(); ++i) {
    ASSERT_EQ(joined[i], joined[i - 1] + 1)
        << "tick sequence broken at index " << i << "; standby serial:\n"
        << standby_serial;
  }
  auto standby_ticks = testing::ticks_in(standby_serial);
  ASSERT_FALSE(standby_ticks.empty());
  EXPECT_LE(standby_ticks.front(), checkpoint_tick + 1);
  EXPECT_GT(primary_last, checkpoint_tick + 3) << "primary did not run past the checkpoint";

  std::printf(
      "e2e: checkpoints=40 stop_ms=%.2f devstate_ms=%.2f cont_ms=%.2f (medians) ram_copy_ms=%.1f "
      "devstate_bytes=%zu\n",
      median(stop), median(dev), median(cont), median(copy), device_state.size());
  std::printf(
      "e2e: checkpoint_tick=%ld primary_last=%ld standby_first=%ld | standby start_ms=%.1f "
      "activation load_ms=%.2f cont_ms=%.2f announce_ms=%.2f total_ms=%.2f\n",
      checkpoint_tick, primary_last, standby_ticks.front(), standby->start_ms(),
      activation->load_ms, activation->cont_ms, activation->announce_ms, activation->total_ms);
}

// The secondary keeps applying checkpoints to the replica while the standby
// waits: a standby that wrote guest RAM at start-up (ROM shadowing, kernel
// loading) would corrupt pages the primary never dirties again.
TEST(QemuFailoverE2E, PrelaunchedStandbyLeavesReplicaUntouched) {
  auto guest_path = testing::guest_dir();
  ASSERT_TRUE(guest_path) << guest_path.error().to_string();
  testing::TempDir dir;
  auto nic = UnixListener::listen(dir.file("nic"));
  ASSERT_TRUE(nic);
  QemuConfig c;
  c.memory_mib = 128;
  c.kernel = (*guest_path / "vmlinuz").string();
  c.initrd = (*guest_path / "initrd.img").string();
  c.append = "console=ttyS0 ftd.tick=1";
  c.qmp_socket_path = dir.file("standby.qmp");
  c.serial_log_path = dir.file("standby.serial");
  c.nic = QemuNic{.socket_path = nic->path()};
  std::string replica_path = dir.file("replica");
  {
    auto replica = MappedRegion::map_file(replica_path, c.memory_mib << 20, true);
    ASSERT_TRUE(replica);
    std::memset(replica->data(), 0xA5, replica->size());
  }
  auto standby = StandbyQemu::prelaunch(c, replica_path);
  ASSERT_TRUE(standby) << standby.error().to_string();
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(standby->process().alive());
  std::string bytes = testing::read_file(replica_path);
  ASSERT_EQ(bytes.size(), c.memory_mib << 20);
  auto first_changed = bytes.find_first_not_of('\xA5');
  EXPECT_EQ(first_changed, std::string::npos)
      << "standby wrote guest RAM at offset " << first_changed;
}

}  // namespace
}  // namespace ftd
