// The primary's checkpoint loop against a real ReplicaStore, with the
// SyntheticEngine's replay() as the oracle: whatever the pipeline does
// (initial sync, back-pressure, lost checkpoints, reconnects, scanning instead
// of a dirty log), the replica must end up byte-identical to the guest at the
// epoch it reports, and guest output must never get ahead of the replica.
#include "checkpoint/pipeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>

#include "checkpoint/output_commit_buffer.h"
#include "common/file_util.h"
#include "common/hash.h"
#include "secondary/replica_store.h"
#include "synthetic/synthetic_engine.h"

namespace ftd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// In-process secondary: applies each checkpoint to a ReplicaStore on its own
// thread and acks through the pipeline, like the gRPC stream would.
class LoopbackTransport : public CheckpointTransport {
 public:
  enum class Mode {
    kNormal,     // apply and ack
    kWithhold,   // apply, keep the acks until release_acks()
    kDropAcks,   // apply, lose the acks
    kBlackHole,  // send "succeeds", the checkpoint is lost in flight
    kBroken,     // send fails
    kStallFail,  // send blocks until unstall(), then fails
    kSlow,       // a slow link: each send takes slow_per_page per page, then apply and ack
  };

  explicit LoopbackTransport(ReplicaStore& replica) : replica_(replica) {
    applier_ = std::thread([this] { apply_loop(); });
  }
  ~LoopbackTransport() override { shutdown(); }

  void attach(CheckpointPipeline* p) { pipeline_ = p; }
  Mode mode() const {
    std::lock_guard lock(mu_);
    return mode_;
  }
  void set_mode(Mode m) {
    std::lock_guard lock(mu_);
    mode_ = m;
  }
  // Called by the ack path with the replica's messages after each apply.
  std::atomic<uint64_t> replica_messages{0};
  std::chrono::microseconds slow_per_page{500};

  Status send(uint64_t, std::span<const std::byte> encoded) override {
    if (mode() == Mode::kSlow)
      if (auto h = peek_header(encoded)) std::this_thread::sleep_for(slow_per_page * h->page_count);
    std::unique_lock lock(mu_);
    ++sends_;
    cv_.notify_all();
    switch (mode_) {
      case Mode::kBroken:
        return make_error(ErrorCode::kUnavailable, "stream broken");
      case Mode::kBlackHole:
        return ok();
      case Mode::kStallFail:
        stalled_ = true;
        cv_.notify_all();
        cv_.wait(lock, [&] { return !stalled_ || stopping_; });
        return make_error(ErrorCode::kUnavailable, "stream broke while sending");
      default:
        break;
    }
    queue_.emplace_back(encoded.begin(), encoded.end());
    cv_.notify_all();
    return ok();
  }

  void release_acks() {
    std::deque<std::pair<uint64_t, uint64_t>> acks;
    {
      std::lock_guard lock(mu_);
      acks.swap(withheld_);
      mode_ = Mode::kNormal;
    }
    for (auto [e, us] : acks) pipeline_->on_ack(e, us);
  }
  bool wait_stalled(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return stalled_; });
  }
  void unstall() {
    std::lock_guard lock(mu_);
    stalled_ = false;
    cv_.notify_all();
  }
  uint64_t sends() const {
    std::lock_guard lock(mu_);
    return sends_;
  }
  bool wait_sends(uint64_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return sends_ >= n; });
  }
  // Every queued checkpoint applied (or rejected).
  void drain() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
  }
  std::vector<std::string> errors() const {
    std::lock_guard lock(mu_);
    return errors_;
  }
  void shutdown() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (applier_.joinable()) applier_.join();
  }

 private:
  void apply_loop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      auto bytes = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      auto st = replica_.apply(bytes);
      std::optional<std::pair<uint64_t, uint64_t>> ack;
      if (!st) {
        lock.lock();
        errors_.push_back(st.error().to_string());
        lock.unlock();
      } else if (!(peek_header(bytes)->flags & kFlagSyncChunk)) {
        auto dev = SyntheticEngine::decode_device_state(replica_.device_state());
        if (dev) replica_messages = dev->messages_emitted;
        ack = {{st->epoch, st->apply_us}};
      }
      lock.lock();
      Mode mode = mode_;
      if (ack && mode == Mode::kWithhold) withheld_.push_back(*ack);
      lock.unlock();
      if (ack && (mode == Mode::kNormal || mode == Mode::kBlackHole || mode == Mode::kBroken ||
                  mode == Mode::kSlow))
        pipeline_->on_ack(ack->first, ack->second);
      lock.lock();
      busy_ = false;
      cv_.notify_all();
    }
  }

  ReplicaStore& replica_;
  CheckpointPipeline* pipeline_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<std::byte>> queue_;
  std::deque<std::pair<uint64_t, uint64_t>> withheld_;
  std::vector<std::string> errors_;
  Mode mode_ = Mode::kNormal;
  uint64_t sends_ = 0;
  bool busy_ = false, stalled_ = false, stopping_ = false;
  std::thread applier_;
};

// The output gate the synthetic guest's messages pass through. Its sink checks
// the output-commit promise at the moment of release.
class MessageGate : public OutputGate {
 public:
  explicit MessageGate(const std::atomic<uint64_t>& replica_messages)
      : replica_messages_(replica_messages), buffer_([this](uint64_t&& m) { released(m); }) {}
  void push(uint64_t m) { buffer_.push(m); }
  void advance_epoch() override { buffer_.advance_epoch(); }
  void commit(uint64_t epoch) override { buffer_.commit(epoch); }
  std::vector<uint64_t> released_messages() const {
    std::lock_guard lock(mu_);
    return released_;
  }
  uint64_t violations() const { return violations_; }
  void set_passthrough() override { buffer_.set_passthrough(); }
  void hold() override { buffer_.hold(); }
  void set_release_unacked(std::function<bool()> allowed) override {
    buffer_.set_release_unacked(std::move(allowed));
  }
  void fence() override {
    buffer_.fence([](uint64_t&&) {});
  }
  void set_output_listener(std::function<void()> listener) override {
    buffer_.set_on_held(std::move(listener));
  }
  Stats stats() const override {
    auto s = buffer_.stats();
    return {.held = s.held, .released = s.released, .dropped = s.dropped};
  }

 private:
  void released(uint64_t m) {
    // The replica's applied state must already contain the write behind m.
    if (m >= replica_messages_.load()) ++violations_;
    std::lock_guard lock(mu_);
    released_.push_back(m);
  }
  const std::atomic<uint64_t>& replica_messages_;
  mutable std::mutex mu_;
  std::vector<uint64_t> released_;
  std::atomic<uint64_t> violations_{0};
  OutputCommitBuffer<uint64_t> buffer_;
};

// Forwards everything to a synthetic guest; tests override one behaviour.
class ForwardingEngine : public GuestEngine {
 public:
  explicit ForwardingEngine(SyntheticEngine& e) : e_(e) {}
  std::span<const std::byte> memory() const override { return e_.memory(); }
  size_t page_size() const override { return e_.page_size(); }
  Status pause() override { return e_.pause(); }
  Status resume() override { return e_.resume(); }
  Result<std::vector<std::byte>> capture_device_state() override {
    return e_.capture_device_state();
  }
  std::optional<std::vector<uint32_t>> take_dirty_log() override { return e_.take_dirty_log(); }
  Result<DiskEpoch> take_disk_writes() override { return e_.take_disk_writes(); }

 protected:
  SyntheticEngine& e_;
};

// A guest without a dirty log: the pipeline must find dirty pages by scanning.
class NoDirtyLogEngine : public ForwardingEngine {
 public:
  using ForwardingEngine::ForwardingEngine;
  std::string name() const override { return "synthetic-scan"; }
  std::optional<std::vector<uint32_t>> take_dirty_log() override { return std::nullopt; }
};

// The synthetic guest whose disk capture fails once, at call `fail_at`
// (e.g. the NBD server lost its connection): those writes are gone.
class DiskFailingEngine : public ForwardingEngine {
 public:
  DiskFailingEngine(SyntheticEngine& e, int fail_at) : ForwardingEngine(e), fail_at_(fail_at) {}
  std::string name() const override { return "synthetic-disk-failing"; }
  Result<DiskEpoch> take_disk_writes() override {
    auto taken = e_.take_disk_writes();
    if (++calls_ == fail_at_) return make_error(ErrorCode::kIo, "NBD client went away");
    return taken;
  }

 private:
  const int fail_at_;
  int calls_ = 0;
};

// A guest whose disk capture fails at call `fail_at` and that can start its
// disk copy over (as QmpEngine restarts its mirror): after a restart its
// epochs say incomplete, as a mirror's do while it copies.
class DiskRestartingEngine : public DiskFailingEngine {
 public:
  using DiskFailingEngine::DiskFailingEngine;
  // Like QmpDiskCapture::restart: a copy nothing was taken from goes on.
  Result<bool> restart_disk_copy() override {
    ++restarts;
    if (takes_ > 0) restarted_ = true;
    return true;
  }
  Result<DiskEpoch> take_disk_writes() override {
    ++takes_;
    auto taken = DiskFailingEngine::take_disk_writes();
    if (taken && restarted_) taken->complete = false;
    return taken;
  }
  int restarts = 0;

 private:
  int takes_ = 0;
  bool restarted_ = false;
};

SyntheticEngine::Config guest_config(uint64_t disk_bytes = 0) {
  SyntheticEngine::Config c;
  c.disk_bytes = disk_bytes;
  c.memory_bytes = 2 << 20;  // 512 pages
  c.page_size = 4096;
  c.dirty_pages_per_sec = 20000;
  c.locality = 0.7;
  c.seed = 42;
  c.bytes_per_write = 256;
  c.messages_per_sec = 2000;
  return c;
}

struct Options {
  CompressionPolicy compression = CompressionPolicy::kAuto;
  bool scan = false;  // hide the dirty log
  size_t max_inflight = 4;
  uint64_t disk_bytes = 0;  // the guest's disk, replicated to <dir>/vm.disk
  ThrottleConfig throttle;
  std::chrono::milliseconds disk_retry_interval{5000};
  std::function<std::unique_ptr<GuestEngine>(SyntheticEngine&)> wrapper;
};

// Owns everything in dependency order; tears down the applier first so no
// ack reaches a destroyed pipeline.
class Rig {
 public:
  explicit Rig(Options o = {}) : config_(guest_config(o.disk_bytes)), dir_(make_dir()) {
    auto r = ReplicaStore::open(dir_, "vm", config_.memory_bytes, 4096, o.disk_bytes);
    EXPECT_TRUE(r) << r.error().to_string();
    replica_.emplace(std::move(*r));
    transport_ = std::make_unique<LoopbackTransport>(*replica_);
    gate_ = std::make_unique<MessageGate>(transport_->replica_messages);
    auto e = SyntheticEngine::create(config_, [this](uint64_t m) { gate_->push(m); });
    EXPECT_TRUE(e);
    engine_ = std::move(*e);
    if (o.scan) scan_engine_ = std::make_unique<NoDirtyLogEngine>(*engine_);
    if (o.wrapper) scan_engine_ = o.wrapper(*engine_);
    GuestEngine& g = scan_engine_ ? *scan_engine_ : static_cast<GuestEngine&>(*engine_);
    PipelineConfig pc{.epochs = EpochPolicy::fixed(10ms),
                      .max_inflight = o.max_inflight,
                      .compression = o.compression,
                      .scan_threads = 2,
                      .sync_chunk_pages = 64,
                      .throttle = o.throttle,
                      .disk_retry_interval = o.disk_retry_interval};
    auto p = CheckpointPipeline::create(g, *transport_, pc);
    EXPECT_TRUE(p) << p.error().to_string();
    pipeline_ = std::move(*p);
    pipeline_->add_output_gate(gate_.get());
    transport_->attach(pipeline_.get());
  }
  ~Rig() {
    transport_->unstall();
    transport_->shutdown();
    pipeline_.reset();
    engine_.reset();
    fs::remove_all(dir_);
  }

  CheckpointPipeline& pipeline() { return *pipeline_; }
  LoopbackTransport& transport() { return *transport_; }
  ReplicaStore& replica() { return *replica_; }
  MessageGate& gate() { return *gate_; }
  SyntheticEngine& engine() { return *engine_; }

  void connect() { pipeline_->on_connected(replica_->resume_epoch()); }
  // As a secondary does since digests exist: its pages' digests with the Welcome.
  void connect_with_digests() {
    pipeline_->on_connected(replica_->resume_epoch(), digest_pages(replica_->memory(), 4096));
  }

  // step() on a thread, failing (not hanging) if it blocks past `limit`.
  Status step_within(std::chrono::milliseconds limit = 5000ms) {
    auto f = std::async(std::launch::async, [&] { return pipeline_->step(); });
    if (f.wait_for(limit) != std::future_status::ready) {
      ADD_FAILURE() << "step() still blocked after " << limit.count() << " ms";
      // Unblock it so the test can end: acks for everything.
      transport_->release_acks();
      pipeline_->on_ack(pipeline_->last_captured_epoch(), 0);
      return f.get();
    }
    return f.get();
  }

  void steps(int n) {
    for (int i = 0; i < n; ++i) {
      auto st = step_within();
      ASSERT_TRUE(st) << "step " << i << ": " << st.error().to_string();
      std::this_thread::sleep_for(3ms);
    }
  }

  // Waits until the replica acked everything captured.
  ::testing::AssertionResult settle(std::chrono::milliseconds timeout = 10000ms) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pipeline_->acked_epoch() < pipeline_->last_captured_epoch()) {
      if (std::chrono::steady_clock::now() > deadline)
        return ::testing::AssertionFailure() << "acked " << pipeline_->acked_epoch() << " of "
                                             << pipeline_->last_captured_epoch();
      std::this_thread::sleep_for(2ms);
    }
    transport_->drain();
    return ::testing::AssertionSuccess();
  }

  // The replica equals replay(config, writes in its device state).
  void expect_replica_matches_oracle() {
    EXPECT_TRUE(transport_->errors().empty())
        << "apply errors, first: " << transport_->errors().front();
    EXPECT_EQ(replica_->epoch(), pipeline_->last_captured_epoch());
    auto dev = SyntheticEngine::decode_device_state(replica_->device_state());
    ASSERT_TRUE(dev) << dev.error().to_string();
    EXPECT_GT(dev->writes_done, 0u);
    auto oracle = SyntheticEngine::replay(config_, dev->writes_done);
    ASSERT_TRUE(oracle);
    EXPECT_EQ(hash64(replica_->memory()), hash64(oracle->bytes()))
        << "replica differs from the guest after " << dev->writes_done << " writes";
    if (config_.disk_bytes > 0) {
      // The replica disk holds exactly the disk writes of the same RAM writes.
      const uint64_t disk_writes = SyntheticDisk::writes_after(dev->writes_done);
      auto disk_oracle = SyntheticDisk::replay(config_.seed, config_.disk_bytes, disk_writes);
      ASSERT_TRUE(disk_oracle);
      auto image = read_file(replica_->disk_path());
      ASSERT_TRUE(image);
      EXPECT_GT(disk_writes, 0u);
      EXPECT_EQ(replica_->disk_state().last_seq, disk_writes);
      EXPECT_EQ(hash64(*image), hash64(disk_oracle->bytes()))
          << "replica disk differs from the guest's after " << disk_writes << " disk writes";
    }
    // Output: exactly the messages of the replica's state, in order, none early.
    auto released = gate_->released_messages();
    EXPECT_EQ(released.size(), dev->messages_emitted);
    for (size_t i = 0; i < released.size(); ++i) {
      ASSERT_EQ(released[i], i) << "out of order at " << i;
    }
    EXPECT_EQ(gate_->violations(), 0u);
  }

 private:
  static std::string make_dir() {
    std::string t = (fs::temp_directory_path() / "ftd-pipeline-XXXXXX").string();
    EXPECT_NE(::mkdtemp(t.data()), nullptr);
    return t;
  }
  SyntheticEngine::Config config_;
  std::string dir_;
  std::optional<ReplicaStore> replica_;
  std::unique_ptr<LoopbackTransport> transport_;
  std::unique_ptr<MessageGate> gate_;
  std::unique_ptr<SyntheticEngine> engine_;
  std::unique_ptr<GuestEngine> scan_engine_;  // an engine in front of engine_, if any
  std::unique_ptr<CheckpointPipeline> pipeline_;
};

struct OracleCase {
  CompressionPolicy compression;
  bool scan;
};
class PipelineOracle : public ::testing::TestWithParam<OracleCase> {};

TEST_P(PipelineOracle, ReplicaEqualsReplayAfterSteps) {
  Rig rig({.compression = GetParam().compression, .scan = GetParam().scan});
  EXPECT_EQ(rig.pipeline().step().error().code, ErrorCode::kUnavailable) << "not connected yet";
  rig.connect();
  rig.steps(30);
  ASSERT_TRUE(rig.settle());
  rig.expect_replica_matches_oracle();
  auto s = rig.pipeline().stats();
  EXPECT_EQ(s.checkpoints, 30u);
  EXPECT_TRUE(s.synced);
  EXPECT_GT(s.bytes_sent, 0u);
  EXPECT_EQ(s.lag_epochs, 0u);
  EXPECT_GT(rig.gate().released_messages().size(), 0u);
}

// A peer acking an epoch the pipeline never captured (e.g. a stale replica's
// own epoch) must not release output nor count as applied.
TEST(Pipeline, AckBeyondTheCapturedEpochIsIgnored) {
  Rig rig;
  rig.connect();
  rig.steps(3);
  ASSERT_TRUE(rig.settle());
  const auto before = rig.gate().released_messages().size();
  const uint64_t acked = rig.pipeline().acked_epoch();
  rig.gate().push(~uint64_t{0});  // held in the open epoch; its release would be a violation
  rig.pipeline().on_ack(rig.pipeline().last_captured_epoch() + 50, 0);
  EXPECT_EQ(rig.pipeline().acked_epoch(), acked);
  EXPECT_EQ(rig.gate().released_messages().size(), before);
  EXPECT_EQ(rig.gate().violations(), 0u);
}

// Differential sync: a replica image that already holds the guest's RAM
// (the far side of a planned migration) receives only the pages written
// since, and still ends up equal to the guest.
TEST_P(PipelineOracle, DifferentialSyncSendsOnlyPagesThatDiffer) {
  Rig rig({.compression = GetParam().compression, .scan = GetParam().scan});
  const size_t pages = guest_config().memory_bytes / 4096;
  ASSERT_TRUE(rig.engine().pause());
  ASSERT_TRUE(rig.replica().seed(rig.engine().memory()));
  ASSERT_TRUE(rig.engine().resume());
  std::this_thread::sleep_for(20ms);  // the guest writes some pages meanwhile
  rig.connect_with_digests();
  rig.steps(10);
  ASSERT_TRUE(rig.settle());
  rig.expect_replica_matches_oracle();
  auto s = rig.pipeline().stats();
  EXPECT_EQ(s.sync_pages_sent + s.sync_pages_skipped, pages);
  EXPECT_GT(s.sync_pages_skipped, 0u);
  EXPECT_LT(s.sync_pages_sent, pages / 2) << "most pages were equal on the replica";
}

// Without usable digests (none, or a wrong count) the sync copies every page.
TEST(Pipeline, WrongDigestCountMeansFullCopy) {
  Rig rig;
  rig.pipeline().on_connected(0, std::vector<PageDigest>(7));
  rig.steps(3);
  ASSERT_TRUE(rig.settle());
  rig.expect_replica_matches_oracle();
  EXPECT_EQ(rig.pipeline().stats().sync_pages_sent, guest_config().memory_bytes / 4096);
}

// Planned migration's last checkpoint: acknowledged, and the guest stays
// paused until told otherwise.
TEST(Pipeline, FinalCheckpointIsAckedWithTheGuestPaused) {
  Rig rig;
  rig.connect();
  rig.steps(5);
  ASSERT_TRUE(rig.settle());
  auto final_epoch = rig.pipeline().final_checkpoint(5s);
  ASSERT_TRUE(final_epoch) << final_epoch.error().to_string();
  EXPECT_EQ(*final_epoch, 6u);
  EXPECT_EQ(rig.pipeline().acked_epoch(), 6u);
  EXPECT_TRUE(rig.engine().paused());
  rig.transport().drain();
  rig.expect_replica_matches_oracle();
  ASSERT_TRUE(rig.pipeline().resume_after_final());
  EXPECT_FALSE(rig.engine().paused());
}

TEST(Pipeline, FinalCheckpointRefusedBeforeSync) {
  Rig rig;
  rig.connect();
  auto r = rig.pipeline().final_checkpoint(1s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(rig.engine().paused());
}

INSTANTIATE_TEST_SUITE_P(Engines, PipelineOracle,
                         ::testing::Values(OracleCase{CompressionPolicy::kAuto, false},
                                           OracleCase{CompressionPolicy::kNone, false},
                                           OracleCase{CompressionPolicy::kLz4, false},
                                           OracleCase{CompressionPolicy::kZstd, false},
                                           OracleCase{CompressionPolicy::kAuto, true},
                                           OracleCase{CompressionPolicy::kZstd, true}));

TEST(Pipeline, BackPressureBlocksCaptureUntilAcked) {
  Rig rig({.max_inflight = 3});
  rig.connect();
  rig.transport().set_mode(LoopbackTransport::Mode::kWithhold);
  rig.steps(3);
  ASSERT_TRUE(rig.transport().wait_sends(rig.transport().sends(), 1000ms));
  auto f = std::async(std::launch::async, [&] { return rig.pipeline().step(); });
  EXPECT_EQ(f.wait_for(300ms), std::future_status::timeout) << "step() ran past max_inflight";
  EXPECT_EQ(rig.pipeline().last_captured_epoch(), 3u);
  // The replica has applied them, but nothing was acked: nothing may leave.
  rig.transport().drain();
  EXPECT_EQ(rig.replica().epoch(), 3u);
  EXPECT_TRUE(rig.gate().released_messages().empty());
  rig.transport().release_acks();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  ASSERT_TRUE(f.get());
  EXPECT_GE(rig.pipeline().stats().backpressure_waits, 1u);
  ASSERT_TRUE(rig.settle());
  rig.expect_replica_matches_oracle();
}

// Checkpoints lost in flight, then a reconnect: the pipeline resends what the
// replica misses (catch-up), even when the lost ones fill max_inflight.
TEST(Pipeline, ReconnectCatchesUpLostCheckpoints) {
  Rig rig({.max_inflight = 4});
  rig.connect();
  rig.steps(10);
  ASSERT_TRUE(rig.settle());
  const uint64_t before = rig.transport().sends();
  rig.transport().set_mode(LoopbackTransport::Mode::kBlackHole);
  rig.steps(4);
  ASSERT_TRUE(rig.transport().wait_sends(before + 4, 2000ms))
      << rig.transport().sends() - before << " sends, captured "
      << rig.pipeline().last_captured_epoch();
  rig.pipeline().on_disconnected();
  rig.transport().set_mode(LoopbackTransport::Mode::kNormal);
  EXPECT_EQ(rig.replica().epoch(), 10u);
  rig.connect();
  rig.steps(10);
  ASSERT_TRUE(rig.settle());
  rig.expect_replica_matches_oracle();
}

// The replica applied everything but the acks were lost: in step on reconnect.
TEST(Pipeline, ReconnectInStepAfterLostAcks) {
  Rig rig({.max_inflight = 4});
  rig.connect();
  rig.steps(5);
  ASSERT_TRUE(rig.settle());
  rig.transport().set_mode(LoopbackTransport::Mode::kDropAcks);
  rig.steps(4);
  rig.transport().drain();
  ASSERT_TRUE(rig.transport().wait_sends(9 + 8, 2000ms));  // 8 sync chunks + 9 checkpoints
  rig.transport().drain();
  EXPECT_EQ(rig.replica().epoch(), 9u);
  rig.pipeline().on_disconnected();
  rig.transport().set_mode(LoopbackTransport::Mode::kNormal);
  rig.connect();
  rig.steps(5);
  ASSERT_TRUE(rig.settle());
  rig.expect_replica_matches_oracle();
}

// The replica lost everything (new disk): a full sync rebuilds it, even with
// a full window of unacknowledged checkpoints left over from the old stream.
TEST(Pipeline, ReconnectToEmptyReplicaDoesFullSync) {
  Rig rig({.max_inflight = 4});
  rig.connect();
  rig.steps(6);
  ASSERT_TRUE(rig.settle());
  const uint64_t before = rig.transport().sends();
  rig.transport().set_mode(LoopbackTransport::Mode::kBlackHole);
  rig.steps(4);
  ASSERT_TRUE(rig.transport().wait_sends(before + 4, 2000ms))
      << rig.transport().sends() - before << " sends, captured "
      << rig.pipeline().last_captured_epoch();
  rig.pipeline().on_disconnected();
  rig.transport().set_mode(LoopbackTransport::Mode::kNormal);
  ASSERT_TRUE(rig.replica().reset());
  rig.connect();
  rig.steps(6);
  ASSERT_TRUE(rig.settle());
  EXPECT_GT(rig.replica().epoch(), 10u) << "epochs stay monotonic across a full sync";
  rig.expect_replica_matches_oracle();
}

// A send of the old stream that fails only after the reconnect must not
// mark the new stream as broken.
TEST(Pipeline, LateFailureOfOldStreamDoesNotBreakNewOne) {
  Rig rig({.max_inflight = 4});
  rig.connect();
  rig.steps(3);
  ASSERT_TRUE(rig.settle());
  rig.transport().set_mode(LoopbackTransport::Mode::kStallFail);
  rig.steps(1);
  ASSERT_TRUE(rig.transport().wait_stalled(2000ms));
  rig.pipeline().on_disconnected();
  rig.transport().set_mode(LoopbackTransport::Mode::kNormal);
  rig.connect();
  rig.transport().unstall();
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(rig.pipeline().stats().connected);
  rig.steps(5);
  ASSERT_TRUE(rig.settle());
  rig.expect_replica_matches_oracle();
}

// A broken stream stops capture with a clear error until the owner reconnects.
TEST(Pipeline, BrokenStreamNeedsReconnect) {
  Rig rig({.max_inflight = 4});
  rig.connect();
  rig.steps(3);
  ASSERT_TRUE(rig.settle());
  rig.transport().set_mode(LoopbackTransport::Mode::kBroken);
  ASSERT_TRUE(rig.step_within());
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (rig.pipeline().stats().connected && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_FALSE(rig.pipeline().stats().connected);
  auto st = rig.step_within();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
  rig.transport().set_mode(LoopbackTransport::Mode::kNormal);
  rig.connect();
  rig.steps(5);
  ASSERT_TRUE(rig.settle());
  rig.expect_replica_matches_oracle();
}

// The timer loop: start/stop, then manual steps keep shipping.
TEST(Pipeline, LoopStartStopThenManualSteps) {
  Rig rig;
  rig.connect();
  rig.pipeline().start();
  std::this_thread::sleep_for(300ms);
  rig.pipeline().stop();
  EXPECT_GT(rig.pipeline().last_captured_epoch(), 3u);
  ASSERT_TRUE(rig.settle());
  rig.steps(6);
  ASSERT_TRUE(rig.settle(3000ms)) << "checkpoints after stop() were never shipped";
  rig.expect_replica_matches_oracle();
}

// Records when each checkpoint captured the device state: epoch lengths.
class EpochProbeEngine : public ForwardingEngine {
 public:
  using ForwardingEngine::ForwardingEngine;
  std::string name() const override { return "synthetic-epoch-probe"; }
  Result<std::vector<std::byte>> capture_device_state() override {
    std::lock_guard lock(mu_);
    captures_.push_back(std::chrono::steady_clock::now());
    return e_.capture_device_state();
  }
  // Median capture-to-capture time (ms) over the captures since `since`.
  double median_epoch_ms(std::chrono::steady_clock::time_point since) const {
    std::lock_guard lock(mu_);
    std::vector<double> gaps;
    for (size_t i = 1; i < captures_.size(); ++i)
      if (captures_[i - 1] >= since)
        gaps.push_back(
            std::chrono::duration<double, std::milli>(captures_[i] - captures_[i - 1]).count());
    if (gaps.empty()) return 0;
    std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
    return gaps[gaps.size() / 2];
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::chrono::steady_clock::time_point> captures_;
};

struct OverloadRun {
  double median_epoch_ms = 0;
  double writes_per_s = 0;  // the guest's progress in the measured window
  ThrottleStats throttle;
};

// The loop against a link too slow for the guest (0.5 ms per dirty page:
// at most 2000 pages/s, the guest dirties far more): warm up, then measure.
OverloadRun run_overloaded(ThrottleConfig throttle) {
  EpochProbeEngine* probe = nullptr;
  Rig rig({.throttle = throttle, .wrapper = [&](SyntheticEngine& e) {
             auto p = std::make_unique<EpochProbeEngine>(e);
             probe = p.get();
             return p;
           }});
  rig.connect();
  rig.transport().set_mode(LoopbackTransport::Mode::kSlow);
  rig.pipeline().start();
  std::this_thread::sleep_for(2500ms);  // sync, then the throttle (if on) converges
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t w0 = rig.engine().writes_done();
  std::this_thread::sleep_for(2000ms);
  OverloadRun r;
  r.writes_per_s = static_cast<double>(rig.engine().writes_done() - w0) / 2.0;
  r.median_epoch_ms = probe->median_epoch_ms(t0);
  r.throttle = rig.pipeline().stats().throttle;
  rig.pipeline().stop();
  rig.transport().set_mode(LoopbackTransport::Mode::kNormal);
  EXPECT_TRUE(rig.settle());
  rig.expect_replica_matches_oracle();
  return r;
}

TEST(PipelineThrottle, KeepsEpochsBoundedUnderOverloadAndTheGuestProgresses) {
  const auto bound = 80ms;
  const OverloadRun free_run = run_overloaded({});
  const OverloadRun throttled = run_overloaded({.enabled = true, .max_epoch = bound});
  std::printf(
      "overload: epoch p50 %.1f ms free vs %.1f ms throttled (bound %lld ms); guest "
      "writes/s %.0f vs %.0f; duty %.2f, guest stopped %.2f s\n",
      free_run.median_epoch_ms, throttled.median_epoch_ms, static_cast<long long>(bound.count()),
      free_run.writes_per_s, throttled.writes_per_s, throttled.throttle.duty,
      throttled.throttle.stopped_s);
  // Without the throttle back-pressure stretches epochs well past the bound.
  EXPECT_GT(free_run.median_epoch_ms, 2.0 * bound.count());
  // With it they stay under the bound...
  EXPECT_LE(throttled.median_epoch_ms, static_cast<double>(bound.count()));
  EXPECT_TRUE(throttled.throttle.active);
  EXPECT_GE(throttled.throttle.starts, 1u);
  EXPECT_GT(throttled.throttle.stopped_s, 0.0);
  EXPECT_FALSE(free_run.throttle.enabled);
  // ...and the guest makes progress in both.
  EXPECT_GT(free_run.writes_per_s, 0.0);
  EXPECT_GT(throttled.writes_per_s, 0.0);
}

TEST(PipelineThrottle, StopReleasesTheGuest) {
  Rig rig({.throttle = {.enabled = true, .max_epoch = 20ms, .window = 20ms, .min_duty = 0.1}});
  rig.connect();
  rig.transport().set_mode(LoopbackTransport::Mode::kSlow);
  rig.pipeline().start();
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(rig.pipeline().stats().throttle.active);
  rig.pipeline().stop();
  EXPECT_FALSE(rig.pipeline().stats().throttle.active);
  // The guest runs free again: nothing left it stopped.
  const uint64_t w0 = rig.engine().writes_done();
  std::this_thread::sleep_for(200ms);
  EXPECT_GT(rig.engine().writes_done(), w0);
  EXPECT_FALSE(rig.engine().paused());
  rig.transport().set_mode(LoopbackTransport::Mode::kNormal);
  rig.steps(3);
  ASSERT_TRUE(rig.settle());
  rig.expect_replica_matches_oracle();
}

// A running guest whose memory differs from zero only while the pipeline takes
// its `visible_on`-th look at it (a scan or a sync chunk copy): a page
// allocated, written and zeroed again while the initial sync runs. Nothing
// changes while paused. This is the QEMU failover bug: the scan hashed the
// zero page, the copy saw the transient bytes, the next scan saw zero again
// and the replica kept the stale copy.
class TransientEngine : public GuestEngine {
 public:
  TransientEngine(size_t bytes, uint64_t visible_on) : mem_(bytes), visible_on_(visible_on) {}
  std::string name() const override { return "transient"; }
  std::span<const std::byte> memory() const override {
    if (armed_ && running_) {
      const auto fill = ++looks_ == visible_on_ ? std::byte{0x5a} : std::byte{0};
      std::fill(mem_.begin(), mem_.end(), fill);
    }
    return mem_;
  }
  Status pause() override {
    running_ = false;
    return ok();
  }
  Status resume() override {
    running_ = true;
    return ok();
  }
  Result<std::vector<std::byte>> capture_device_state() override {
    return std::vector<std::byte>(16, std::byte{1});
  }
  void arm() { armed_ = true; }
  uint64_t looks() const { return looks_; }
  // The guest's memory now, without counting as a look.
  std::span<const std::byte> current() const { return mem_; }

 private:
  mutable std::vector<std::byte> mem_;
  const uint64_t visible_on_;
  bool armed_ = false;
  std::atomic<bool> running_{true};
  mutable std::atomic<uint64_t> looks_{0};
};

TEST(Pipeline, SyncCopyOfTransientContentIsResent) {
  // 8 sync chunks: look 1 is the arming scan, 2..9 the chunk copies, 10 the
  // first convergence scan; 11 lies past the sync.
  for (uint64_t look = 1; look <= 11; ++look) {
    SCOPED_TRACE(::testing::Message() << "memory differs on look " << look);
    std::string dir = (fs::temp_directory_path() / "ftd-transient-XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    TransientEngine engine(512 * 4096, look);
    {
      auto replica = ReplicaStore::open(dir, "vm", 512 * 4096, 4096);
      ASSERT_TRUE(replica) << replica.error().to_string();
      LoopbackTransport transport(*replica);
      auto p = CheckpointPipeline::create(
          engine, transport,
          PipelineConfig{
              .epochs = EpochPolicy::fixed(10ms), .scan_threads = 2, .sync_chunk_pages = 64});
      ASSERT_TRUE(p) << p.error().to_string();
      transport.attach(p->get());
      engine.arm();
      (*p)->on_connected(replica->resume_epoch());
      for (int i = 0; i < 3; ++i) ASSERT_TRUE((*p)->step());
      for (int i = 0; i < 500 && (*p)->acked_epoch() < 3; ++i) std::this_thread::sleep_for(2ms);
      transport.drain();
      EXPECT_TRUE(transport.errors().empty()) << transport.errors().front();
      EXPECT_EQ(replica->epoch(), 3u);
      EXPECT_GE(engine.looks(), 10u) << "the sync took fewer looks than this test assumes";
      auto m = replica->memory();
      auto g = engine.current();
      EXPECT_TRUE(std::equal(m.begin(), m.end(), g.begin(), g.end()))
          << "the replica differs from the guest at the same epoch";
      transport.shutdown();
    }
    fs::remove_all(dir);
  }
}

}  // namespace
}  // namespace ftd

namespace ftd {
namespace {

constexpr uint64_t kDisk = 4 << 20;

// The guest's disk writes reach the replica disk with the RAM of the same
// epoch: the replica disk equals a replay of the disk writes that the
// replica's RAM state implies.
TEST(PipelineDisk, ReplicaDiskEqualsReplayAfterSteps) {
  Rig rig({.disk_bytes = kDisk});
  rig.connect();
  rig.steps(30);
  ASSERT_TRUE(rig.settle());
  rig.expect_replica_matches_oracle();
  const auto s = rig.pipeline().stats();
  EXPECT_EQ(s.disk.disk_size, kDisk);
  EXPECT_TRUE(s.disk.complete);
  EXPECT_TRUE(s.disk.error.empty());
  EXPECT_EQ(s.disk.last_seq, rig.replica().disk_state().last_seq);
  EXPECT_GT(s.disk.bytes, 0u);
  EXPECT_TRUE(rig.replica().disk_consistent());
}

// Checkpoints lost in flight take their disk writes with them: the catch-up
// after the reconnect resends them (the replica rejects a gap otherwise).
TEST(PipelineDisk, ReconnectCatchesUpLostDiskWrites) {
  Rig rig({.max_inflight = 4, .disk_bytes = kDisk});
  rig.connect();
  rig.steps(6);
  ASSERT_TRUE(rig.settle());
  const uint64_t before = rig.transport().sends();
  rig.transport().set_mode(LoopbackTransport::Mode::kBlackHole);
  rig.steps(3);
  ASSERT_TRUE(rig.transport().wait_sends(before + 3, 2000ms));
  rig.pipeline().on_disconnected();
  // The catch-up (epochs 7..10 in one) is lost too: the second catch-up must
  // send each write once, although epoch 10 repeats those of 7..9.
  rig.connect();
  rig.steps(1);
  ASSERT_TRUE(rig.transport().wait_sends(before + 4, 2000ms))
      << rig.transport().sends() - before << " sends, captured "
      << rig.pipeline().last_captured_epoch();
  rig.pipeline().on_disconnected();
  rig.transport().set_mode(LoopbackTransport::Mode::kNormal);
  rig.connect();
  rig.steps(6);
  ASSERT_TRUE(rig.settle()) << (rig.transport().errors().empty() ? std::string("no apply error")
                                                                 : rig.transport().errors()[0]);
  rig.expect_replica_matches_oracle();
}

// An engine error while taking the disk writes loses them: the checkpoint
// still protects the RAM, but from then on the disk is reported unprotected
// and every checkpoint says incomplete, so the replica is never activated
// with that disk.
TEST(PipelineDisk, DiskCaptureErrorMeansDiskNotProtected) {
  Rig rig({.disk_bytes = kDisk, .wrapper = [](SyntheticEngine& e) {
             return std::make_unique<DiskFailingEngine>(e, 5);
           }});
  rig.connect();
  rig.steps(4);
  ASSERT_TRUE(rig.settle());
  EXPECT_TRUE(rig.replica().disk_consistent());
  rig.steps(6);
  ASSERT_TRUE(rig.settle());
  const auto s = rig.pipeline().stats();
  EXPECT_NE(s.disk.error.find("NBD client went away"), std::string::npos) << s.disk.error;
  EXPECT_FALSE(s.disk.complete);
  EXPECT_TRUE(rig.transport().errors().empty()) << rig.transport().errors().front();
  EXPECT_EQ(rig.replica().epoch(), rig.pipeline().last_captured_epoch()) << "RAM still protected";
  EXPECT_FALSE(rig.replica().disk_state().complete);
  EXPECT_FALSE(rig.replica().disk_consistent());
}

// A full sync drops the unacknowledged epochs' disk writes: the pipeline
// asks the engine to start its disk copy over (once per full sync, with the
// guest paused), and a restarted copy clears an earlier capture error.
TEST(PipelineDisk, FullSyncRestartsTheDiskCopy) {
  DiskRestartingEngine* engine = nullptr;
  Rig rig({.max_inflight = 4, .disk_bytes = kDisk, .wrapper = [&](SyntheticEngine& e) {
             auto w = std::make_unique<DiskRestartingEngine>(e, 5);
             engine = w.get();
             return w;
           }});
  rig.connect();
  rig.steps(6);
  ASSERT_TRUE(rig.settle());
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->restarts, 1) << "the first sync asks too (the engine knows it shipped nothing)";
  EXPECT_FALSE(rig.pipeline().stats().disk.error.empty()) << "capture failed at call 5";
  const uint64_t before = rig.transport().sends();
  rig.transport().set_mode(LoopbackTransport::Mode::kBlackHole);
  rig.steps(3);
  ASSERT_TRUE(rig.transport().wait_sends(before + 3, 2000ms));
  rig.pipeline().on_disconnected();
  rig.transport().set_mode(LoopbackTransport::Mode::kNormal);
  ASSERT_TRUE(rig.replica().reset());
  rig.connect();
  rig.steps(4);
  ASSERT_TRUE(rig.settle()) << (rig.transport().errors().empty() ? std::string("no apply error")
                                                                 : rig.transport().errors()[0]);
  EXPECT_EQ(engine->restarts, 2);
  const auto s = rig.pipeline().stats();
  EXPECT_TRUE(s.disk.error.empty()) << s.disk.error;
  EXPECT_FALSE(s.disk.complete) << "the new copy is still running";
  EXPECT_FALSE(rig.replica().disk_consistent());
  EXPECT_EQ(rig.replica().epoch(), rig.pipeline().last_captured_epoch()) << "RAM protected";
}

// A loss of disk protection is not left for the next full sync: after
// disk_retry_interval the pipeline starts a new full copy itself (guest
// paused), which clears the error; the copy's epochs say incomplete until it
// is done, so the replica is never activated with a disk missing writes.
TEST(PipelineDisk, LostDiskProtectionIsRetriedWithANewCopy) {
  DiskRestartingEngine* engine = nullptr;
  Rig rig({.disk_bytes = kDisk, .disk_retry_interval = 0ms, .wrapper = [&](SyntheticEngine& e) {
             auto w = std::make_unique<DiskRestartingEngine>(e, 5);
             engine = w.get();
             return w;
           }});
  rig.connect();
  rig.steps(4);
  ASSERT_TRUE(rig.settle());
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->restarts, 1) << "the first sync";
  EXPECT_TRUE(rig.pipeline().stats().disk.error.empty());
  // Take 5 fails (writes lost); the checkpoint after it starts a new copy.
  for (int i = 0; i < 12 && engine->restarts < 2; ++i) {
    rig.steps(1);
    ASSERT_TRUE(rig.settle());
  }
  EXPECT_EQ(engine->restarts, 2) << "no new copy after the capture error";
  const auto s = rig.pipeline().stats();
  EXPECT_TRUE(s.disk.error.empty()) << s.disk.error;
  EXPECT_EQ(s.disk.copy_retries, 1u);
  EXPECT_FALSE(s.disk.complete) << "the new copy is still running";
  EXPECT_FALSE(rig.replica().disk_consistent());
  EXPECT_EQ(rig.replica().epoch(), rig.pipeline().last_captured_epoch()) << "RAM protected";
  rig.steps(3);
  ASSERT_TRUE(rig.settle());
  EXPECT_EQ(engine->restarts, 2) << "no retry while nothing is lost";
}

}  // namespace
}  // namespace ftd
