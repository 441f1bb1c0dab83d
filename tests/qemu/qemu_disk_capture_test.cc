// Disk capture against a real QEMU 7.2 (BIOS only, no guest kernel): a raw
// disk mirrored (write-blocking) into ftd's NBD server; writes are issued
// through the guest device's own block backend with HMP `qemu-io`, between
// checkpoints of pause → device state → take_disk_writes → resume, as the
// pipeline runs them. Every write must be in the epoch it completed in, and
// the epochs replayed onto an empty image must give the primary's image.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "common/hash.h"
#include "common/subprocess.h"
#include "common/unique_fd.h"
#include "qemu/qmp_engine.h"
#include "qemu_test_util.h"

namespace ftd {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kDiskSize = 64 << 20;

// One operation the test issued through the guest device.
struct Issued {
  DiskWrite::Kind kind;
  uint64_t offset;
  uint32_t length;
  uint8_t pattern = 0;   // data writes: every byte
  bool discard = false;  // kZeroes issued as a discard (guest TRIM) instead of write -z
  bool async = false;    // aio_write: may still be in flight when `stop` is sent
};

std::vector<std::byte> file_bytes(const std::string& path) {
  std::string s = testing::read_file(path);
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// 8 MiB of non-zero data, the rest a hole: the initial copy must carry both.
void make_image(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600));
  ASSERT_TRUE(fd);
  std::vector<uint8_t> chunk(1 << 20);
  for (int m = 0; m < 8; ++m) {
    for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<uint8_t>(i * 7 + m * 13 + 1);
    ASSERT_EQ(::write(fd.get(), chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
  }
  ASSERT_EQ(::ftruncate(fd.get(), kDiskSize), 0);
}

void apply_write(std::vector<std::byte>& image, const DiskWrite& w) {
  ASSERT_LE(w.offset + w.length, image.size());
  if (w.kind == DiskWrite::Kind::kZeroes) {
    std::fill_n(image.begin() + static_cast<ptrdiff_t>(w.offset), w.length, std::byte{0});
  } else {
    ASSERT_EQ(w.data.size(), w.length);
    std::copy(w.data.begin(), w.data.end(), image.begin() + static_cast<ptrdiff_t>(w.offset));
  }
}

bool matches(const DiskWrite& w, const Issued& op) {
  if (w.kind != op.kind || w.offset != op.offset || w.length != op.length) return false;
  return op.kind == DiskWrite::Kind::kZeroes ||
         std::all_of(w.data.begin(), w.data.end(),
                     [&](std::byte b) { return b == std::byte{op.pattern}; });
}

double p50(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

class QmpDiskCaptureTest : public ::testing::Test {
 protected:
  void start(QmpDiskCaptureOptions disk) {
    make_image(dir_.file("disk.img"));
    QemuConfig c = testing::bios_only_config(dir_);
    c.disk = QemuDisk{.path = dir_.file("disk.img"), .format = "raw"};
    auto q = QemuProcess::launch(c);
    ASSERT_TRUE(q) << q.error().to_string();
    QmpEngineOptions o;
    o.disk = std::move(disk);
    auto e = QmpEngine::create(std::move(*q), o);
    ASSERT_TRUE(e) << e.error().to_string();
    engine_ = std::move(*e);
  }
  QmpDiskCaptureOptions default_disk() {
    return {.nbd_socket_path = dir_.file("nbd.sock"), .spill_dir = dir_.path()};
  }
  // One checkpoint as the pipeline takes it; the guest runs again after.
  Result<DiskEpoch> checkpoint() {
    FTD_TRY(engine_->pause());
    FTD_TRY(engine_->capture_device_state());
    auto epoch = engine_->take_disk_writes();
    FTD_TRY(engine_->resume());
    return epoch;
  }
  // Runs `qemu-io` on the guest device's backend (above the mirror filter,
  // where a guest write enters the block layer); returns when the I/O completed.
  void qemu_io(const std::string& command) {
    auto out = engine_->process().qmp().execute(
        "human-monitor-command",
        QmpClient::Json{
            {"command-line", fmt::format("qemu-io -d /machine/peripheral/{}/virtio-backend \"{}\"",
                                         kDiskDeviceId, command)}});
    ASSERT_TRUE(out) << out.error().to_string();
    // qemu-io prints its results on QEMU's stdout, not into the reply; the
    // reply carries errors only. Whether the bytes landed is checked by
    // hashing the image against the test's model at the end.
    std::string text = out->is_string() ? out->get<std::string>() : "";
    ASSERT_EQ(text, "") << command;
  }
  void issue(const Issued& op) {
    switch (op.kind) {
      case DiskWrite::Kind::kData:
        qemu_io(fmt::format("{} -P {} {} {}", op.async ? "aio_write" : "write", op.pattern,
                            op.offset, op.length));
        break;
      case DiskWrite::Kind::kZeroes:
        qemu_io(fmt::format("{} {} {}", op.discard ? "discard" : "write -z", op.offset, op.length));
        break;
    }
  }

  testing::TempDir dir_;
  std::unique_ptr<QmpEngine> engine_;
};

TEST_F(QmpDiskCaptureTest, EveryEpochCarriesExactlyTheWritesCompletedBeforeStop) {
  start(default_disk());
  ASSERT_TRUE(engine_);
  const std::vector<std::byte> original = file_bytes(dir_.file("disk.img"));
  std::vector<std::byte> replica(kDiskSize);  // replayed from the epochs alone
  std::vector<std::byte> model = original;    // the test's own oracle of the disk

  // Initial copy: epochs are incomplete until the mirror is ready.
  auto deadline = Clock::now() + 60s;
  int copy_epochs = 0;
  uint64_t copy_records = 0;
  while (true) {
    auto epoch = checkpoint();
    ASSERT_TRUE(epoch) << epoch.error().to_string();
    EXPECT_EQ(epoch->disk_size, kDiskSize);
    for (const DiskWrite& w : epoch->writes) apply_write(replica, w);
    copy_records += epoch->writes.size();
    ++copy_epochs;
    if (epoch->complete) break;
    ASSERT_LT(Clock::now(), deadline) << "mirror never became ready";
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(hash64(replica), hash64(original)) << "initial copy incomplete";

  std::mt19937_64 rng(9);
  std::vector<double> stop_idle, stop_writes, disk_ms_writes;
  uint64_t issued_total = 0, extra_records = 0, discards_issued = 0, async_issued = 0;
  constexpr int kCycles = 40;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    std::vector<Issued> issued;
    if (cycle % 2 == 1) {
      int n = 1 + static_cast<int>(rng() % 6);
      for (int i = 0; i < n; ++i) {
        Issued op;
        uint64_t r = rng();
        op.kind = r % 4 == 0 ? DiskWrite::Kind::kZeroes : DiskWrite::Kind::kData;
        op.discard = r % 8 == 0;
        op.offset = (rng() % (kDiskSize / 4096 - 16)) * 4096;
        op.length = static_cast<uint32_t>(4096 * (1 + rng() % 16));
        if (r % 5 == 1 && op.kind == DiskWrite::Kind::kData) {  // sector- but not block-aligned:
                                                                // the chunk is re-copied too
          op.offset += 512;
          op.length = 1536;
        }
        op.pattern = static_cast<uint8_t>(1 + (issued_total + i) % 255);
        issue(op);
        // QEMU 7.2 drops a guest discard while the mirror runs: its filter
        // node is opened without BDRV_O_UNMAP (block/mirror.c
        // mirror_start_job), so bdrv_co_pdiscard returns before reaching
        // the source or the target. No record expected, image unchanged.
        if (op.discard) {
          ++discards_issued;
          continue;
        }
        issued.push_back(op);
      }
      if (cycle % 4 == 3) {
        // Returns at once; `stop` must drain it into this epoch.
        Issued op{.kind = DiskWrite::Kind::kData,
                  .offset = (rng() % (kDiskSize / (1 << 20))) << 20,
                  .length = 1 << 20,
                  .pattern = static_cast<uint8_t>(1 + (issued_total + n) % 255),
                  .async = true};
        issue(op);
        issued.push_back(op);
        ++async_issued;
      }
      issued_total += issued.size();
    }
    auto epoch = checkpoint();
    ASSERT_TRUE(epoch) << "cycle " << cycle << ": " << epoch.error().to_string();
    ASSERT_TRUE(epoch->complete);
    (issued.empty() ? stop_idle : stop_writes).push_back(engine_->last_timings().stop_ms);
    if (!issued.empty()) disk_ms_writes.push_back(engine_->last_timings().disk_ms);
    // Every issued write, in issue order, in this epoch; anything else is a
    // background re-copy of source data.
    size_t next = 0;
    for (const DiskWrite& w : epoch->writes) {
      if (next < issued.size() && matches(w, issued[next])) {
        ++next;
      } else {
        ++extra_records;
      }
      apply_write(replica, w);
    }
    EXPECT_EQ(next, issued.size()) << "cycle " << cycle << ": write " << next << " of "
                                   << issued.size() << " missing from its epoch";
    for (const Issued& op : issued) {
      DiskWrite w{.offset = op.offset, .length = op.length, .kind = op.kind};
      if (op.kind == DiskWrite::Kind::kData) w.data.assign(op.length, std::byte{op.pattern});
      apply_write(model, w);
    }
  }

  // Quiesced: the primary's image, the replay and the model all agree.
  ASSERT_TRUE(engine_->pause());
  auto last = engine_->take_disk_writes();
  ASSERT_TRUE(last);
  for (const DiskWrite& w : last->writes) apply_write(replica, w);
  const std::vector<std::byte> primary = file_bytes(dir_.file("disk.img"));
  ASSERT_EQ(primary.size(), kDiskSize);
  EXPECT_EQ(hash64(primary), hash64(model)) << "QEMU's image differs from the writes issued";
  EXPECT_EQ(hash64(replica), hash64(primary)) << "replayed epochs differ from the primary image";
  ASSERT_TRUE(engine_->resume());
  auto status = engine_->disk_status();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->phase, "ready");
  std::printf(
      "initial copy: %d epochs, %llu records | %llu writes (%llu of 1 MiB async, +%llu "
      "discards) issued in %d cycles, %llu extra (re-copy) records | stop_ms p50 idle=%.2f "
      "with_writes=%.2f | disk_ms p50=%.2f | "
      "spilled=%llu\n",
      copy_epochs, static_cast<unsigned long long>(copy_records),
      static_cast<unsigned long long>(issued_total), static_cast<unsigned long long>(async_issued),
      static_cast<unsigned long long>(discards_issued), kCycles,
      static_cast<unsigned long long>(extra_records), p50(stop_idle), p50(stop_writes),
      p50(disk_ms_writes), static_cast<unsigned long long>(status->log.spills_total));
}

// The target refuses writes (spill impossible beyond a 1 MiB memory limit):
// QEMU's mirror job fails and the engine says so at every checkpoint from
// then on, instead of shipping epochs of an unprotected disk.
TEST_F(QmpDiskCaptureTest, MirrorFailureIsReportedAndSticks) {
  QmpDiskCaptureOptions disk = default_disk();
  disk.memory_limit = 1 << 20;
  disk.spill_dir = "/nonexistent/ftd-spill";
  start(disk);
  ASSERT_TRUE(engine_);
  auto deadline = Clock::now() + 60s;
  Result<DiskEpoch> epoch;
  while (true) {
    epoch = checkpoint();
    if (!epoch) break;
    ASSERT_FALSE(epoch->complete) << "the mirror cannot be ready: its target failed writes";
    ASSERT_LT(Clock::now(), deadline) << "the mirror failure was never reported";
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(epoch.error().message.find("disk not protected"), std::string::npos)
      << epoch.error().to_string();
  auto again = checkpoint();
  ASSERT_FALSE(again);
  EXPECT_EQ(engine_->disk_status()->phase, "failed");
  std::printf("reported: %s\n", epoch.error().to_string().c_str());
}

// A full resync restarts the copy (QmpEngine::restart_disk_copy, guest
// stopped): the ready mirror is cancelled, a new job copies the whole disk
// again (epochs incomplete until it is ready), and the writes of both jobs
// replayed in order still give the primary's image. Also: disk_bytes() is
// the node's size, and a restart before any take() keeps the first job.
TEST_F(QmpDiskCaptureTest, RestartedCopyMakesTheReplicaWholeAgain) {
  start(default_disk());
  ASSERT_TRUE(engine_);
  EXPECT_EQ(engine_->disk_bytes(), kDiskSize);
  std::vector<std::byte> replica(kDiskSize);
  auto take_until_ready = [&](const char* what) {
    const auto deadline = Clock::now() + 60s;
    for (;;) {
      auto epoch = checkpoint();
      ASSERT_TRUE(epoch) << what << ": " << epoch.error().to_string();
      for (const DiskWrite& w : epoch->writes) apply_write(replica, w);
      if (epoch->complete) return;
      ASSERT_LT(Clock::now(), deadline) << what << ": the mirror never became ready";
      std::this_thread::sleep_for(20ms);
    }
  };
  ASSERT_TRUE(engine_->pause());
  auto first = engine_->restart_disk_copy();  // nothing taken yet: the first job goes on
  ASSERT_TRUE(engine_->resume());
  ASSERT_TRUE(first) << first.error().to_string();
  take_until_ready("first copy");
  issue({.kind = DiskWrite::Kind::kData, .offset = 1 << 20, .length = 65536, .pattern = 0x5a});
  auto lost = checkpoint();  // these writes never reach the replica: a full sync dropped them
  ASSERT_TRUE(lost && lost->complete && !lost->writes.empty());
  issue({.kind = DiskWrite::Kind::kData, .offset = 9 << 20, .length = 4096, .pattern = 0x33});

  ASSERT_TRUE(engine_->pause());
  auto restarted = engine_->restart_disk_copy();
  ASSERT_TRUE(engine_->resume());
  ASSERT_TRUE(restarted) << restarted.error().to_string();
  EXPECT_EQ(engine_->disk_status()->phase, "copying");
  issue({.kind = DiskWrite::Kind::kData, .offset = 20 << 20, .length = 8192, .pattern = 0x77});
  take_until_ready("restarted copy");
  issue({.kind = DiskWrite::Kind::kData, .offset = 30 << 20, .length = 4096, .pattern = 0x11});
  auto after = checkpoint();
  ASSERT_TRUE(after && after->complete);
  for (const DiskWrite& w : after->writes) apply_write(replica, w);
  EXPECT_EQ(hash64(replica), hash64(file_bytes(dir_.file("disk.img"))))
      << "the restarted copy did not make the replica equal to the primary's image";
}

TEST(DiskSpec, ParsesPathAndFormatAndRejectsTheRest) {
  testing::TempDir dir;
  make_image(dir.file("d.img"));
  auto raw = parse_disk_spec(dir.file("d.img"));
  ASSERT_TRUE(raw) << raw.error().to_string();
  EXPECT_EQ(raw->format, "raw");
  ASSERT_TRUE(run_command({"qemu-img", "create", "-q", "-f", "qcow2", dir.file("q.qcow2"), "8M"}));
  auto qcow = parse_disk_spec(dir.file("q.qcow2") + ",format=qcow2");
  ASSERT_TRUE(qcow) << qcow.error().to_string();
  EXPECT_EQ(qcow->format, "qcow2");
  EXPECT_EQ(qcow->path, dir.file("q.qcow2"));
  for (std::string bad : {dir.file("d.img") + ",format=vmdk", dir.file("d.img") + ",cache=none",
                          std::string(",format=raw"), dir.file("missing.img")}) {
    auto r = parse_disk_spec(bad);
    EXPECT_FALSE(r) << bad;
  }
  // The format must match the image: a qcow2 file declared raw (the default)
  // and a raw file declared qcow2 are refused, saying which format it is.
  auto undeclared = parse_disk_spec(dir.file("q.qcow2"));
  ASSERT_FALSE(undeclared);
  EXPECT_NE(undeclared.error().to_string().find("format=qcow2"), std::string::npos)
      << undeclared.error().to_string();
  auto not_qcow2 = parse_disk_spec(dir.file("d.img") + ",format=qcow2");
  ASSERT_FALSE(not_qcow2);
  EXPECT_NE(not_qcow2.error().to_string().find("not qcow2"), std::string::npos)
      << not_qcow2.error().to_string();
  auto argv = qemu_argv(QemuConfig{.qmp_socket_path = "q", .disk = *qcow});
  auto it = std::find(argv.begin(), argv.end(), "-blockdev");
  ASSERT_NE(it, argv.end());
  EXPECT_NE(it[1].find("\"driver\":\"qcow2\""), std::string::npos) << it[1];
  EXPECT_NE(it[1].find("\"discard\":\"unmap\""), std::string::npos) << it[1];
}

}  // namespace
}  // namespace ftd
