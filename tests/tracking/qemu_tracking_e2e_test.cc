// A real QEMU 7.2 guest (TCG) writing memory (ftd.memload), tracked by the
// tracker QmpEngine chose. Oracle: a byte copy of guest RAM taken while QEMU
// is stopped; every page whose bytes changed between two stops must be in
// the tracker's set for that epoch.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "qemu/qmp_engine.h"
#include "tests/guest/guest_testing.h"
#include "tests/qemu/qemu_test_util.h"
#include "tracking/kernel_probes.h"
#include "tracking/uffd_preload_env.h"
#include "tracking/uffd_preload_path.h"

namespace ftd {
namespace {

using namespace std::chrono_literals;

constexpr int kEpochs = 60;

QemuConfig memload_guest(const testing::TempDir& dir, const std::filesystem::path& guest) {
  QemuConfig c;
  c.memory_mib = 128;
  c.kernel = guest / "vmlinuz";
  c.initrd = guest / "initrd.img";
  // 3000 pages/s over a 16 MiB buffer: a few hundred changed pages per epoch.
  c.append = "console=ttyS0 quiet ftd.memload=16:3000";
  c.qmp_socket_path = dir.file("vm.qmp");
  c.serial_log_path = dir.file("vm.serial");
  c.start_timeout = 60s;
  c.uffd_preload_library = default_uffd_preload_library();
  c.uffd_fd = FTD_UFFD_DEFAULT_FD;
  return c;
}

TEST(QemuTrackingE2E, TrackerSetCoversEveryChangedPageAcrossEpochs) {
  if (auto st = probe_uffd_wp(); !st)
    GTEST_SKIP() << "kernel lacks uffd-wp: " << st.error().to_string();
  auto guest = testing::guest_dir();
  ASSERT_TRUE(guest) << guest.error().to_string();
  testing::TempDir dir;
  const QemuConfig config = memload_guest(dir, *guest);
  auto qemu = QemuProcess::launch(config);
  ASSERT_TRUE(qemu) << qemu.error().to_string();
  auto line = testing::wait_for_line(config.serial_log_path, "ftd-memload start", 120s);
  ASSERT_TRUE(line) << line.error().to_string() << "\n" << qemu->log_tail();

  // Audit every 10 epochs: the auditor must agree with the byte oracle.
  QmpEngineOptions options;
  options.tracking.audit.every_epochs = 10;
  auto engine = QmpEngine::create(std::move(*qemu), options);
  ASSERT_TRUE(engine) << engine.error().to_string();
  const TrackingStatus status = (*engine)->tracking_status();
  ASSERT_EQ(status.tracker, "uffd-wp") << status.reason;

  const auto ram = (*engine)->memory();
  const size_t page = 4096, pages = ram.size() / page;
  std::vector<std::byte> copy(ram.size());
  ASSERT_TRUE((*engine)->pause());
  ASSERT_TRUE((*engine)->take_dirty_log());  // arms: from now on, every write counts
  std::memcpy(copy.data(), ram.data(), ram.size());
  ASSERT_TRUE((*engine)->resume());

  size_t changed_total = 0, tracked_total = 0, missed_total = 0;
  for (int epoch = 1; epoch <= kEpochs; ++epoch) {
    std::this_thread::sleep_for(40ms);
    ASSERT_TRUE((*engine)->pause());
    auto log = (*engine)->take_dirty_log();
    ASSERT_TRUE(log) << "tracker failed: " << (*engine)->tracking_status().failure;
    std::vector<bool> tracked(pages, false);
    for (uint32_t p : *log) tracked.at(p) = true;
    size_t changed = 0, missed = 0;
    for (size_t p = 0; p < pages; ++p) {
      if (std::memcmp(copy.data() + p * page, ram.data() + p * page, page) == 0) continue;
      ++changed;
      if (!tracked[p]) {
        ++missed;
        ADD_FAILURE() << "epoch " << epoch << ": page " << p << " changed but was not reported";
      }
      std::memcpy(copy.data() + p * page, ram.data() + p * page, page);
    }
    ASSERT_TRUE((*engine)->resume());
    changed_total += changed;
    tracked_total += log->size();
    missed_total += missed;
    if (missed > 0) break;
  }
  const TrackerCounters c = (*engine)->tracking_status().counters;
  std::printf(
      "tracking.e2e epochs=%d changed=%zu tracked=%zu missed=%zu audits=%lu "
      "audit_misses=%lu max_collect_us=%lu\n",
      kEpochs, changed_total, tracked_total, missed_total, c.audits, c.audit_misses,
      c.max_collect_us);
  EXPECT_EQ(missed_total, 0u);
  EXPECT_GT(changed_total, static_cast<size_t>(kEpochs) * 10) << "memload did not write";
  EXPECT_GE(c.audits, 5u);
  EXPECT_EQ(c.audit_misses, 0u);
  (void)(*engine)->process().quit();
}

TEST(QemuTrackingE2E, QemuWithoutThePreloadFallsBackToTheScan) {
  auto guest = testing::guest_dir();
  ASSERT_TRUE(guest) << guest.error().to_string();
  testing::TempDir dir;
  QemuConfig config = testing::bios_only_config(dir);
  config.uffd_preload_library.clear();
  auto qemu = QemuProcess::launch(config);
  ASSERT_TRUE(qemu) << qemu.error().to_string();
  auto engine = QmpEngine::create(std::move(*qemu));
  ASSERT_TRUE(engine) << engine.error().to_string();
  const TrackingStatus status = (*engine)->tracking_status();
  EXPECT_EQ(status.tracker, "scan");
  EXPECT_NE(status.reason.find("holds no userfaultfd"), std::string::npos) << status.reason;
  EXPECT_FALSE((*engine)->take_dirty_log()) << "scan: the pipeline's scanner finds the pages";
  // Explicitly asking for uffd-wp without the preload is an error, not a silent scan.
  auto qemu2 = QemuProcess::launch(testing::bios_only_config(dir, "vm2"));
  ASSERT_TRUE(qemu2) << qemu2.error().to_string();
  QmpEngineOptions explicit_uffd;
  explicit_uffd.tracking.kind = TrackerKind::kUffdWp;
  EXPECT_FALSE(QmpEngine::create(std::move(*qemu2), explicit_uffd));
}

}  // namespace
}  // namespace ftd
