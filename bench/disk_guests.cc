#include "bench/disk_guests.h"

#include <fmt/format.h>

#include <filesystem>
#include <optional>
#include <thread>

#include "bench/failover_report.h"
#include "common/subprocess.h"
#include "qemu/disk_mirror.h"
#include "qemu/qemu_process.h"
#include "tests/e2e/protected_pair.h"
#include "tests/system/daemon_harness.h"

namespace ftd::bench {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

Status make_sparse_image(const std::string& path, int mib) {
  auto out = run_command({"truncate", "-s", fmt::format("{}M", mib), path});
  return out ? ok() : Status(std::unexpected(out.error()));
}

// QEMU alone on a raw image; the base of qemu-mirror.
class PlainGuest : public DiskBenchGuest {
 public:
  Status start(const DiskGuestOptions& o) {
    image_ = (dir_.path() / "disk.img").string();
    FTD_TRY(make_sparse_image(image_, o.disk_mib));
    QemuConfig c;
    c.memory_mib = static_cast<uint64_t>(o.memory_mib);
    c.kernel = o.guest_dir + "/vmlinuz";
    c.initrd = o.guest_dir + "/initrd.img";
    c.append = "console=ttyS0 quiet ftd.tick=1 " + diskload_knob(o);
    c.qmp_socket_path = (dir_.path() / "qmp").string();
    c.serial_log_path = (dir_.path() / "serial.log").string();
    c.disk = QemuDisk{.path = image_, .format = "raw"};
    c.start_timeout = 60s;
    const auto t0 = Clock::now();
    tail_ = std::make_unique<SerialTail>(c.serial_log_path);
    FTD_ASSIGN_OR_RETURN(auto qemu, QemuProcess::launch(c));
    qemu_.emplace(std::move(qemu));
    FTD_TRY(after_launch());
    if (auto line = tail_->wait_for("ftd-diskload ready", 120s); !line)
      return std::unexpected(qemu_->explain(line.error()));
    setup_["boot_s"] = seconds_since(t0);
    return ok();
  }
  const SerialTail& console() const override { return *tail_; }

 protected:
  virtual Status after_launch() { return ok(); }

  testing::TempDir dir_;  // first: removed last
  std::string image_;
  std::optional<QemuProcess> qemu_;
  std::unique_ptr<SerialTail> tail_;
};

// PlainGuest + QEMU's own write-blocking mirror to qemu-storage-daemon.
class QemuMirrorGuest : public PlainGuest {
 protected:
  Status after_launch() override {
    const std::string target = (shm_.path() / "target.img").string();
    const std::string socket = (dir_.path() / "nbd.sock").string();
    FTD_TRY(make_sparse_image(target, static_cast<int>(std::filesystem::file_size(image_) >> 20)));
    const std::string log = (dir_.path() / "qsd.log").string();
    FTD_ASSIGN_OR_RETURN(
        Subprocess qsd,
        Subprocess::spawn(
            {.argv = {"qemu-storage-daemon", "--blockdev",
                      fmt::format("driver=file,node-name=file0,filename={}", target), "--blockdev",
                      "driver=raw,node-name=target0,file=file0", "--nbd-server",
                      fmt::format("addr.type=unix,addr.path={}", socket), "--export",
                      "type=nbd,id=exp0,node-name=target0,name=ftd-disk,writable=on"},
             .log_path = log}));
    qsd_.emplace(std::move(qsd));
    if (!testing::wait_until([&] { return std::filesystem::exists(socket); }, 10s))
      return make_error(ErrorCode::kUnavailable, "qemu-storage-daemon did not listen: {}",
                        testing::slurp(log));
    const auto t0 = Clock::now();
    FTD_ASSIGN_OR_RETURN(auto mirror, DiskMirror::start(qemu_->qmp(), {.nbd_socket_path = socket,
                                                                       .export_name = "ftd-disk"}));
    mirror_.emplace(std::move(mirror));
    std::string why;
    const bool ready = testing::wait_until(
        [&] {
          auto phase = mirror_->refresh(qemu_->qmp());
          if (!phase) why = phase.error().to_string();
          return phase && *phase == MirrorPhase::kReady;
        },
        120s);
    if (!ready)
      return make_error(ErrorCode::kTimeout, "QEMU's mirror to qemu-storage-daemon not ready: {}",
                        mirror_->failure() ? mirror_->failure()->to_string() : why);
    setup_["mirror_ready_s"] = seconds_since(t0);
    return ok();
  }

 private:
  testing::TempDir shm_{"/dev/shm"};
  std::optional<Subprocess> qsd_;
  std::optional<DiskMirror> mirror_;
};

// A real protected pair, disk replicated by ftd.
class FtdGuest : public DiskBenchGuest {
 public:
  Status start(const DiskGuestOptions& o) {
    const auto t0 = Clock::now();
    FTD_ASSIGN_OR_RETURN(pair_, testing::ProtectedPair::start({.arbiter = "none",
                                                               .memory_mib = o.memory_mib,
                                                               .epoch_ms = o.epoch_ms,
                                                               .disk_mib = o.disk_mib,
                                                               .disk_ext4 = false,
                                                               .append_extra = diskload_knob(o)}));
    setup_["protected_s"] = seconds_since(t0);
    tail_ = std::make_unique<SerialTail>(pair_->primary_run() + "/serial.log");
    std::string last;
    const bool disk = testing::wait_until(
        [&] {
          auto s = pair_->primary().status();
          if (s) last = s->disk_detail();
          return s && s->disk_protected();
        },
        120s);
    if (!disk) return make_error(ErrorCode::kTimeout, "disk never protected: {}", last);
    setup_["disk_protected_s"] = seconds_since(t0);
    if (auto s = pair_->primary().status(); s)
      setup_["epoch_policy"] =
          fmt::format("{} {}-{} ms", s->epoch_policy(), s->epoch_min_ms(), s->epoch_max_ms());
    return ok();
  }
  const SerialTail& console() const override { return *tail_; }

  Json sample_pauses(unsigned ms) override {
    auto plan = pair_->primary().plan(ms);
    if (!plan) return {{"error", plan.error().to_string()}};
    const auto& in = plan->inputs();
    std::vector<double> total;
    for (const auto& p : in.pauses()) total.push_back(p.fixed_ms() + p.copy_ms());
    auto s = pair_->primary().status();
    return {{"n", total.size()},
            {"p50_ms", percentile(total, 50)},
            {"p99_ms", percentile(total, 99)},
            {"max_ms", percentile(total, 100)},
            {"checkpoints_per_sec", in.checkpoints_per_sec()},
            {"dirty_pages_per_s", in.dirty_pages_per_s()},
            // Means over the window; devstate includes taking the epoch's disk writes.
            {"parts_mean_ms",
             {{"stop", in.stop_ms()},
              {"find", in.find_ms()},
              {"copy", in.copy_ms()},
              {"devstate_disk", in.devstate_ms()},
              {"resume", in.resume_ms()}}},
            {"commit_p50_ms", in.commit_p50_ms()},
            {"commit_p99_ms", in.commit_p99_ms()},
            {"disk_protected", s && s->disk_protected()},
            {"disk_bytes_captured", s ? s->disk_bytes_applied() : 0}};
  }

 private:
  std::unique_ptr<testing::ProtectedPair> pair_;
  std::unique_ptr<SerialTail> tail_;  // after pair_: stops following first
};

}  // namespace

std::string diskload_knob(const DiskGuestOptions& o) {
  return fmt::format("ftd.diskload={}:{}", o.disk_mib, o.phase_s);
}

Result<std::unique_ptr<DiskBenchGuest>> start_disk_guest(const std::string& config,
                                                         const DiskGuestOptions& options) {
  if (config == "plain" || config == "qemu-mirror") {
    auto g =
        config == "plain" ? std::make_unique<PlainGuest>() : std::make_unique<QemuMirrorGuest>();
    FTD_TRY(g->start(options));
    return g;
  }
  if (config == "ftd") {
    auto g = std::make_unique<FtdGuest>();
    FTD_TRY(g->start(options));
    return g;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown configuration '{}' (plain, ftd, qemu-mirror)", config);
}

}  // namespace ftd::bench
