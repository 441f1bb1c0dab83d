#include "checkpoint/pipeline.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "checkpoint/resume_plan.h"

namespace ftd {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t us_between(Clock::time_point a, Clock::time_point b) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(b - a).count());
}

// Sorted union of two sorted page lists.
std::vector<uint32_t> merge_pages(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  std::vector<uint32_t> out;
  out.reserve(a.size() + b.size());
  std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

}  // namespace

Result<std::unique_ptr<CheckpointPipeline>> CheckpointPipeline::create(
    GuestEngine& engine, CheckpointTransport& transport, PipelineConfig config) {
  if (engine.page_size() == 0 || engine.memory().size() % engine.page_size() != 0)
    return make_error(ErrorCode::kInvalidArgument, "guest memory {} not a multiple of page size {}",
                      engine.memory().size(), engine.page_size());
  if (config.max_inflight == 0) config.max_inflight = 1;
  FTD_TRY(check_throttle(config.throttle));
  FTD_ASSIGN_OR_RETURN(MappedRegion shadow, MappedRegion::anonymous(engine.memory().size()));
  auto throttled = config.throttle.enabled
                       ? std::make_unique<ThrottledEngine>(engine, config.throttle)
                       : nullptr;
  GuestEngine& used = throttled ? *throttled : engine;
  return std::unique_ptr<CheckpointPipeline>(
      new CheckpointPipeline(used, std::move(throttled), transport, config, std::move(shadow)));
}

CheckpointPipeline::CheckpointPipeline(GuestEngine& engine,
                                       std::unique_ptr<ThrottledEngine> throttled,
                                       CheckpointTransport& transport, PipelineConfig config,
                                       MappedRegion shadow)
    : throttled_(std::move(throttled)),
      engine_(engine),
      transport_(transport),
      config_(config),
      page_size_(engine.page_size()),
      page_count_(engine.memory().size() / engine.page_size()),
      scanner_(engine.page_size(), config.scan_threads),
      shadow_(std::move(shadow)),
      encode_workers_(config.encode_threads) {
  ship_thread_ = std::thread([this] { ship_loop(); });
}

CheckpointPipeline::~CheckpointPipeline() {
  // The gates outlive the pipeline (a re-protected VM keeps its NIC): after
  // this no gate calls into it, not even a call that was in flight.
  for (OutputGate* g : gates_) g->set_output_listener(nullptr);
  stop();
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (ship_thread_.joinable()) ship_thread_.join();
}

void CheckpointPipeline::add_output_gate(OutputGate* gate) {
  gates_.push_back(gate);
  gate->set_output_listener([this] { on_output(); });
}

void CheckpointPipeline::on_output() {
  if (output_waiting_.fetch_add(1) != 0) return;  // the loop was woken for this epoch already
  output_waiting_since_ns_ = Clock::now().time_since_epoch().count();
  if (config_.epochs.kind != EpochPolicyKind::kOutputDriven) return;
  // Taking mu_ orders this wake-up with the loop's check-then-wait: the loop
  // either saw the count, or is already waiting and gets the notify.
  { MutexLock lock(mu_); }
  cv_.notify_all();
}

EpochSignals CheckpointPipeline::epoch_signals(Clock::time_point now,
                                               Clock::time_point last_checkpoint) const {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  EpochSignals s;
  s.since_last = duration_cast<microseconds>(now - last_checkpoint);
  s.output_waiting = output_waiting_.load();
  if (s.output_waiting > 0) {
    const Clock::time_point since{Clock::duration(output_waiting_since_ns_.load())};
    s.oldest_output_age = duration_cast<microseconds>(now - since);
  }
  s.previous_acked = acked_epoch_.load() >= captured_epoch_.load();
  return s;
}

std::optional<CheckpointTrigger> CheckpointPipeline::wait_for_trigger(
    Clock::time_point last_checkpoint, Clock::time_point not_before) {
  // A condition variable, not a short sleep-and-poll: on_output() and on_ack()
  // notify cv_, so the checkpoint starts within a wake-up of the output (a
  // 1 ms poll would add up to 1 ms to every response and burn CPU the guest
  // needs). mu_ is held only while deciding, never across the pause.
  MutexLock lock(mu_);
  while (true) {
    if (stopping_ || loop_stopping_) return std::nullopt;
    const auto now = Clock::now();
    if (now < not_before) {
      cv_.wait_until(mu_, not_before);
      continue;
    }
    const EpochDecision d = decide_epoch(config_.epochs, epoch_signals(now, last_checkpoint));
    if (d.trigger != CheckpointTrigger::kNone) return d.trigger;
    cv_.wait_until(mu_, now + d.wait);
  }
}

std::vector<uint64_t> CheckpointPipeline::retained_epochs() const {
  std::vector<uint64_t> epochs;
  epochs.reserve(unacked_pages_.size());
  for (const auto& [epoch, pages] : unacked_pages_) epochs.push_back(epoch);
  return epochs;
}

void CheckpointPipeline::on_connected(uint64_t replica_epoch,
                                      std::vector<PageDigest> replica_pages) {
  MutexLock lock(mu_);
  replica_pages_ =
      replica_pages.size() == page_count_ ? std::move(replica_pages) : std::vector<PageDigest>{};
  ++generation_;
  ship_queue_.clear();  // items of the old stream; their pages are in unacked_pages_
  connected_ = true;
  const uint64_t captured = captured_epoch_.load();
  // The replica holds every epoch up to its own; the old stream's acks for
  // them are gone. Left in unacked_pages_ they would fill the in-flight window
  // forever and block the next capture.
  std::erase_if(unacked_pages_, [&](const auto& kv) { return kv.first <= replica_epoch; });
  std::erase_if(unacked_since_, [&](const auto& kv) { return kv.first <= replica_epoch; });
  std::erase_if(unacked_disk_, [&](const auto& kv) { return kv.first <= replica_epoch; });
  const std::vector<uint64_t> retained = retained_epochs();
  const ResumePlan plan = plan_resume({.synced = !need_full_sync_,
                                       .acked_since_sync = replica_consistent(),
                                       .replica_epoch = replica_epoch,
                                       .captured_epoch = captured,
                                       .retained_epochs = retained});
  spdlog::info("replication.resume plan={} replica_epoch={} captured_epoch={} reason=\"{}\"",
               to_string(plan.kind), replica_epoch, captured, plan.reason);
  std::optional<uint64_t> release_to;
  switch (plan.kind) {
    case ResumePlan::Kind::kInStep:
      release_to = plan.from_epoch;
      break;
    case ResumePlan::Kind::kCatchUp:
      catch_up_from_ = plan.from_epoch;
      release_to = plan.from_epoch;
      break;
    case ResumePlan::Kind::kFullSync:
      need_full_sync_ = true;
      first_epoch_after_sync_ = 0;
      // A full sync resends everything: no old epoch will be acked or caught up.
      unacked_pages_.clear();
      unacked_since_.clear();
      // Their disk writes are lost to the replica: unless the engine's disk
      // copy starts over (DiskEpoch.complete false), the replica refuses the
      // gap in the write sequence rather than hold an inconsistent disk.
      unacked_disk_.clear();
      // Our epoch numbering is kept even if the replica is ahead (a restarted
      // primary): sync chunks reset the replica to epoch 0, and the output
      // gates count epochs in step with us, never with the replica.
      break;
  }
  // After a full sync decision the replica's number is not one of ours:
  // nothing of ours is acknowledged (and replica_consistent() must not say so).
  acked_epoch_ =
      plan.kind == ResumePlan::Kind::kFullSync ? 0 : std::min<uint64_t>(replica_epoch, captured);
  lock.unlock();
  cv_.notify_all();
  // The replica holds these epochs even if their acks were lost with the old
  // stream: their output may go. (Not after a full sync: then the replica's
  // epoch number is not one of ours.)
  if (release_to)
    for (OutputGate* g : gates_) g->commit(*release_to);
}

void CheckpointPipeline::on_disconnected() {
  MutexLock lock(mu_);
  connected_ = false;
  cv_.notify_all();
}

void CheckpointPipeline::on_ack(uint64_t epoch, uint64_t apply_us) {
  {
    MutexLock lock(mu_);
    // An ack for an epoch not yet captured is a peer error (or a stale
    // replica's epoch): believing it would release output the replica does
    // not hold.
    if (epoch > captured_epoch_.load()) {
      spdlog::error("replication.bad_ack epoch={} captured_epoch={}: ignored", epoch,
                    captured_epoch_.load());
      return;
    }
    if (epoch > acked_epoch_) acked_epoch_ = epoch;
    if (auto it = unacked_since_.find(epoch); it != unacked_since_.end())
      stats_.record_commit(us_between(it->second, Clock::now()));
    std::erase_if(unacked_pages_, [&](const auto& kv) { return kv.first <= epoch; });
    std::erase_if(unacked_since_, [&](const auto& kv) { return kv.first <= epoch; });
    std::erase_if(unacked_disk_, [&](const auto& kv) { return kv.first <= epoch; });
  }
  stats_.record_apply(apply_us);
  for (OutputGate* g : gates_) g->commit(epoch);
  cv_.notify_all();
}

bool CheckpointPipeline::wait_until_shipped() {
  MutexLock lock(mu_);
  while (!stopping_ && !loop_stopping_ && connected_ && (shipping_ || !ship_queue_.empty()))
    cv_.wait(mu_);
  return !stopping_ && !loop_stopping_ && connected_;
}

bool CheckpointPipeline::wait_for_room() {
  MutexLock lock(mu_);
  // A pending catch-up always has room: the epochs filling the window were
  // lost with the old stream and only the catch-up checkpoint's ack clears them.
  auto room = [&]() FTD_NO_THREAD_SAFETY_ANALYSIS {  // called only with mu_ held, below
    return stopping_ || loop_stopping_ || !connected_ || catch_up_from_.has_value() ||
           (unacked_pages_.size() < config_.max_inflight &&
            ship_queue_.size() < config_.max_inflight);
  };
  if (!room()) {
    stats_.record_backpressure();
    while (!room()) cv_.wait(mu_);
  }
  return !stopping_ && !loop_stopping_ && connected_;
}

void CheckpointPipeline::copy_pages(std::span<const uint32_t> pages,
                                    std::vector<std::byte>& out) const {
  // Appending (not resize + memcpy) writes each byte once: this runs while
  // the guest is paused.
  out.clear();
  out.reserve(pages.size() * page_size_);
  const std::byte* mem = engine_.memory().data();
  for (uint32_t p : pages) {
    const std::byte* src = mem + size_t{p} * page_size_;
    out.insert(out.end(), src, src + page_size_);
  }
}

Status CheckpointPipeline::queue_sync_pages(std::span<const uint32_t> pages, uint64_t generation,
                                            const char* phase) {
  int last_decile = -1;
  for (size_t first = 0; first < pages.size(); first += config_.sync_chunk_pages) {
    if (!wait_for_room())
      return make_error(ErrorCode::kUnavailable, "secondary disconnected during initial sync");
    size_t n = std::min(config_.sync_chunk_pages, pages.size() - first);
    Captured c{.epoch = 0, .base_epoch = 0, .flags = kFlagSyncChunk, .xor_delta = false};
    c.pages.assign(pages.begin() + static_cast<ptrdiff_t>(first),
                   pages.begin() + static_cast<ptrdiff_t>(first + n));
    c.contents = take_spare_buffer();  // a fresh 64 MiB chunk would fault in every page
    copy_pages(c.pages, c.contents);
    // The guest runs during the sync: the next scan must compare against what
    // was copied, not against what the last scan saw (see PageScanner::rebase).
    if (!has_dirty_log_) scanner_.rebase(c.pages, c.contents);
    c.generation = generation;
    {
      MutexLock lock(mu_);
      if (generation != generation_)
        return make_error(ErrorCode::kUnavailable, "reconnected during initial sync");
      ship_queue_.push_back(std::move(c));
    }
    cv_.notify_all();
    double progress = static_cast<double>(first + n) / static_cast<double>(pages.size());
    if (std::string_view(phase) == "copy") stats_.set_sync_progress(progress, false);
    if (int decile = static_cast<int>(progress * 10); decile != last_decile) {
      last_decile = decile;
      spdlog::info("sync.progress phase={} percent={:.0f} pages={}/{}", phase, progress * 100,
                   first + n, pages.size());
    }
  }
  return ok();
}

Result<std::vector<uint32_t>> CheckpointPipeline::dirty_since_last_look() {
  // A dirty log may only be read while the guest is paused (it is KVM-like);
  // the scanner runs with the guest going: hash-then-copy order keeps it safe.
  if (has_dirty_log_) {
    FTD_TRY(engine_.pause());
    auto log = engine_.take_dirty_log();
    FTD_TRY(engine_.resume());
    return log ? std::move(*log) : std::vector<uint32_t>{};
  }
  return scanner_.scan(engine_.memory());
}

Status CheckpointPipeline::initial_sync() {
  auto t0 = Clock::now();
  // Arm dirty tracking BEFORE copying: a page written after its hash (or log
  // reset) is re-sent later even if the copy already saw the new contents.
  FTD_TRY(engine_.pause());
  has_dirty_log_ = engine_.take_dirty_log().has_value();
  restart_disk_copy();
  FTD_TRY(engine_.resume());
  if (!has_dirty_log_) {
    scanner_.reset();
    scanner_.scan(engine_.memory());
  }
  uint64_t generation;
  {
    MutexLock lock(mu_);
    generation = generation_;
    carry_over_.clear();
    catch_up_from_.reset();
  }
  std::vector<PageDigest> replica_pages;
  {
    MutexLock lock(mu_);
    replica_pages = std::move(replica_pages_);
    replica_pages_.clear();
  }
  spdlog::info("sync.start pages={} bytes={} tracker={} replica_digests={}", page_count_,
               page_count_ * page_size_, has_dirty_log_ ? "dirty-log" : "scan",
               !replica_pages.empty());
  // The shadow is the shipper's: wait until it has nothing of an older stream in hand.
  if (!wait_until_shipped())
    return make_error(ErrorCode::kUnavailable, "secondary disconnected during initial sync");
  const std::vector<uint32_t> differing = pages_to_sync(std::move(replica_pages));
  stats_.set_sync_pages(differing.size(), page_count_ - differing.size());
  FTD_TRY(queue_sync_pages(differing, generation, "copy"));

  // Converge like pre-copy migration: re-send what the guest dirtied during
  // the previous pass, while it runs, until one pass is small enough for a
  // paused checkpoint. Without this a long sync ends in one huge first pause.
  // Each pass is looked at once the previous one has been sent: what the
  // guest wrote while it was on the wire is then in the next pass, not in
  // the first checkpoint (whose output, for a guest re-protected while
  // running, is held until the replica is complete).
  const size_t small_enough = std::max<size_t>(1024, config_.sync_chunk_pages / 16);
  for (int round = 1; round <= config_.max_sync_rounds; ++round) {
    if (!wait_until_shipped())
      return make_error(ErrorCode::kUnavailable, "secondary disconnected during initial sync");
    FTD_ASSIGN_OR_RETURN(std::vector<uint32_t> dirty, dirty_since_last_look());
    if (dirty.size() <= small_enough) {
      // Not lost: a scan already consumed them, so the first checkpoint takes them.
      MutexLock lock(mu_);
      carry_over_ = std::move(dirty);
      break;
    }
    spdlog::info("sync.round n={} dirty_pages={}", round, dirty.size());
    FTD_TRY(queue_sync_pages(dirty, generation, "converge"));
    if (round == config_.max_sync_rounds) {
      MutexLock lock(mu_);
      carry_over_.clear();  // the final round's pages were queued above
    }
  }
  {
    MutexLock lock(mu_);
    // A reconnect after the last chunk was queued decided afresh; keep its decision.
    if (generation != generation_)
      return make_error(ErrorCode::kUnavailable, "reconnected during initial sync");
    need_full_sync_ = false;
    sync_just_done_ = true;
    replica_base_epoch_ = 0;  // sync chunks leave the replica at "epoch 0, syncing"
  }
  stats_.set_sync_progress(1.0, true);
  spdlog::info("sync.queued ms={}", us_between(t0, Clock::now()) / 1000);
  return ok();
}

std::vector<uint32_t> CheckpointPipeline::pages_to_sync(std::vector<PageDigest> replica_pages) {
  std::vector<uint32_t> pages;
  if (replica_pages.size() != page_count_) {
    pages.resize(page_count_);
    for (size_t i = 0; i < page_count_; ++i) pages[i] = static_cast<uint32_t>(i);
    return pages;
  }
  // The guest runs: copy each page once, digest the copy, and if it equals
  // the replica's page put that very copy in the shadow (so XOR deltas start
  // from what the replica holds). A write after the copy is caught by the
  // tracker armed before this pass, as for a copied page.
  const auto t0 = Clock::now();
  std::vector<std::byte> page(page_size_);
  const std::byte* mem = engine_.memory().data();
  for (size_t i = 0; i < page_count_; ++i) {
    std::memcpy(page.data(), mem + i * page_size_, page_size_);
    if (digest_page(page) == replica_pages[i]) {
      std::memcpy(shadow_.data() + i * page_size_, page.data(), page_size_);
    } else {
      pages.push_back(static_cast<uint32_t>(i));
    }
  }
  spdlog::info("sync.diff pages={} differ={} skipped={} bytes_saved={} ms={}", page_count_,
               pages.size(), page_count_ - pages.size(), (page_count_ - pages.size()) * page_size_,
               us_between(t0, Clock::now()) / 1000);
  return pages;
}

// Capture in three steps: decide what to add (locked), capture while the
// guest is paused (no lock: the pause must not wait for a reader of stats or
// an ack), record the result (locked).
Result<CheckpointPipeline::Captured> CheckpointPipeline::capture(bool keep_paused) {
  CapturePlan plan = plan_capture();
  PauseBreakdown timing;
  Captured c = capture_paused(std::move(plan), timing, keep_paused);
  if (c.capture_error) {
    // The scan consumed these pages (and the plan took the carried ones out):
    // keep them all for the next attempt, whatever a reconnect decided since.
    MutexLock lock(mu_);
    carry_over_ = merge_pages(carry_over_, c.pages);
    return std::unexpected(*c.capture_error);
  }
  stats_.record_pause(timing);
  finish_capture(c);
  return c;
}

CheckpointPipeline::CapturePlan CheckpointPipeline::plan_capture() {
  MutexLock lock(mu_);
  CapturePlan plan;
  plan.generation = generation_;
  plan.catch_up = catch_up_from_.has_value();
  plan.base_epoch = catch_up_from_.value_or(replica_base_epoch_);
  plan.extra_pages = std::move(carry_over_);
  carry_over_.clear();
  if (plan.catch_up) {
    for (auto& [epoch, pages] : unacked_pages_)
      if (epoch > *catch_up_from_) plan.extra_pages = merge_pages(plan.extra_pages, pages);
    // A catch-up's own checkpoint holds the writes of the epochs it caught
    // up: a second catch-up over it takes each write once, in seq order.
    for (auto& [epoch, disk] : unacked_disk_)
      if (epoch > *catch_up_from_ && disk)
        for (const DiskWrite& w : disk->writes)
          if (plan.extra_disk.empty() || w.seq > plan.extra_disk.back().seq)
            plan.extra_disk.push_back(w);
  }
  plan.disk_error = disk_error_;
  plan.buffer = take_spare_buffer_locked();
  return plan;
}

std::vector<std::byte> CheckpointPipeline::take_spare_buffer() {
  MutexLock lock(mu_);
  return take_spare_buffer_locked();
}

std::vector<std::byte> CheckpointPipeline::take_spare_buffer_locked() {
  if (spare_buffers_.empty()) return {};
  std::vector<std::byte> b = std::move(spare_buffers_.back());
  spare_buffers_.pop_back();
  return b;
}

CheckpointPipeline::Captured CheckpointPipeline::capture_paused(CapturePlan plan, PauseBreakdown& p,
                                                                bool keep_paused) {
  Captured c;
  c.generation = plan.generation;
  c.base_epoch = plan.base_epoch;
  // Extra pages reached neither the replica nor (maybe) the shadow in the
  // form the secondary has, so they go as absolute contents, not XOR deltas.
  c.xor_delta = !plan.catch_up && plan.extra_pages.empty();
  c.contents = std::move(plan.buffer);

  auto t0 = Clock::now();
  if (auto paused = engine_.pause(); !paused) {
    c.pages = std::move(plan.extra_pages);
    c.capture_error = paused.error().with_context("pause");
    return c;
  }
  auto t1 = Clock::now();
  auto log = engine_.take_dirty_log();
  std::vector<uint32_t> dirty = log ? std::move(*log) : scanner_.scan(engine_.memory());
  c.pages = plan.extra_pages.empty() ? std::move(dirty) : merge_pages(dirty, plan.extra_pages);
  auto t2 = Clock::now();
  copy_pages(c.pages, c.contents);
  auto t3 = Clock::now();
  auto dev = engine_.capture_device_state();
  if (dev) {
    retry_disk_copy_if_due();
    c.disk = take_disk_writes(std::move(plan.extra_disk), plan.disk_error);
  }
  auto t4 = Clock::now();
  if (dev) {
    c.device_state = std::move(*dev);
    c.epoch = captured_epoch_.load() + 1;
    // Reset before the gates close the epoch: an item pushed in between counts
    // as waiting although this checkpoint covers it (at worst one early
    // checkpoint), never the other way round (output left waiting unseen).
    output_waiting_ = 0;
    // Output produced from now on belongs to the next epoch and waits for its ack.
    for (OutputGate* g : gates_) {
      g->advance_epoch();
      g->hold();
    }
    captured_epoch_ = c.epoch;
  }
  Status resumed = keep_paused ? ok() : engine_.resume();
  auto t5 = Clock::now();
  if (!dev) {
    c.capture_error = dev.error().with_context("capture device state");
    return c;
  }
  // A failed resume does not make the capture wrong: the checkpoint must still
  // ship, or the pages the scan consumed would never reach the replica.
  if (!resumed) c.resume_error = resumed.error().with_context("resume");
  p = {.stop_us = us_between(t0, t1),
       .dirty_us = us_between(t1, t2),
       .copy_us = us_between(t2, t3),
       .devstate_us = us_between(t3, t4),
       .resume_us = us_between(t4, t5),
       .total_us = us_between(t0, t5),
       .dirty_pages = static_cast<uint32_t>(c.pages.size()),
       .devstate_bytes = c.device_state.size()};
  return c;
}

void CheckpointPipeline::restart_disk_copy() {
  // The writes of unacknowledged epochs were dropped with them (on_connected):
  // only a new full copy makes the replica disk consistent again.
  auto restarted = engine_.restart_disk_copy();
  if (!restarted) {
    mark_disk_unprotected(restarted.error().with_context("restart the disk copy").to_string());
    return;
  }
  if (!*restarted) return;
  MutexLock lock(mu_);
  // A fresh full copy: an earlier loss of writes no longer applies.
  disk_error_.reset();
  disk_progress_.error.clear();
}

void CheckpointPipeline::mark_disk_unprotected(const std::string& why) {
  spdlog::error("disk.unprotected epoch={} error=\"{}\" retry_in_ms={}", captured_epoch_.load() + 1,
                why, config_.disk_retry_interval.count());
  MutexLock lock(mu_);
  if (!disk_error_) {
    disk_error_ = why;
    next_disk_retry_ = Clock::now() + config_.disk_retry_interval;
  }
  disk_progress_.error = *disk_error_;
  disk_progress_.complete = false;
}

void CheckpointPipeline::retry_disk_copy_if_due() {
  std::string why;
  uint64_t attempt = 0;
  {
    MutexLock lock(mu_);
    if (!disk_error_ || Clock::now() < next_disk_retry_) return;
    // Before the attempt: a retry that fails again waits a whole interval.
    next_disk_retry_ = Clock::now() + config_.disk_retry_interval;
    why = *disk_error_;
    attempt = ++disk_progress_.copy_retries;
  }
  // The cause may have been transient (a full spill directory, an NBD client
  // that went away): only a new full copy makes the replica disk whole again.
  spdlog::warn("disk.copy_retry attempt={} after=\"{}\"", attempt, why);
  restart_disk_copy();
}

std::shared_ptr<const DiskEpoch> CheckpointPipeline::take_disk_writes(
    std::vector<DiskWrite> extra, const std::optional<std::string>& disk_error) {
  auto taken = engine_.take_disk_writes();
  if (!taken) {
    // The engine lost track of its writes: nothing it says about the disk can
    // be trusted from now on. The checkpoint still ships (the RAM stays
    // protected) with an incomplete disk, which the replica never activates.
    mark_disk_unprotected(taken.error().with_context("take disk writes").to_string());
    if (disk_size_ == 0) return nullptr;
    return std::make_shared<const DiskEpoch>(DiskEpoch{.disk_size = disk_size_});
  }
  if (taken->disk_size == 0 && extra.empty()) return nullptr;
  disk_size_ = taken->disk_size;
  auto disk = std::make_shared<DiskEpoch>(std::move(*taken));
  if (disk_error) disk->complete = false;
  uint64_t new_bytes = 0;
  for (const DiskWrite& w : disk->writes) new_bytes += w.length;
  const uint64_t new_writes = disk->writes.size();
  if (!extra.empty()) {
    extra.insert(extra.end(), std::make_move_iterator(disk->writes.begin()),
                 std::make_move_iterator(disk->writes.end()));
    disk->writes = std::move(extra);
  }
  MutexLock lock(mu_);
  disk_progress_.disk_size = disk->disk_size;
  disk_progress_.complete = disk->complete;
  disk_progress_.writes += new_writes;
  disk_progress_.bytes += new_bytes;
  if (!disk->writes.empty()) disk_progress_.last_seq = disk->writes.back().seq;
  return disk;
}

void CheckpointPipeline::finish_capture(const Captured& c) {
  MutexLock lock(mu_);
  // A reconnect during the pause decided afresh (catch-up from the replica's
  // epoch, or full sync); this capture must not overwrite that decision.
  if (c.generation == generation_) {
    catch_up_from_.reset();
    replica_base_epoch_ = c.epoch;
    if (sync_just_done_) first_epoch_after_sync_ = c.epoch;
    sync_just_done_ = false;
  }
}

Status CheckpointPipeline::step() {
  bool full_sync;
  {
    MutexLock lock(mu_);
    if (!connected_) return make_error(ErrorCode::kUnavailable, "no secondary connected");
    full_sync = need_full_sync_;
  }
  if (full_sync) FTD_TRY(initial_sync());
  if (!wait_for_room()) return make_error(ErrorCode::kUnavailable, "secondary disconnected");
  FTD_ASSIGN_OR_RETURN(Captured c, capture());
  std::optional<Error> resume_error = std::move(c.resume_error);
  queue_captured(std::move(c));
  if (resume_error) return std::unexpected(*resume_error);
  return ok();
}

void CheckpointPipeline::queue_captured(Captured c) {
  {
    MutexLock lock(mu_);
    unacked_pages_[c.epoch] = c.pages;
    unacked_disk_[c.epoch] = c.disk;
    unacked_since_[c.epoch] = Clock::now();
    ship_queue_.push_back(std::move(c));
  }
  cv_.notify_all();
}

Result<uint64_t> CheckpointPipeline::final_checkpoint(std::chrono::milliseconds timeout) {
  {
    MutexLock lock(mu_);
    if (loop_thread_.joinable())
      return make_error(ErrorCode::kFailedPrecondition, "final checkpoint with the loop running");
    if (!connected_ || need_full_sync_ || !replica_consistent())
      return make_error(ErrorCode::kFailedPrecondition, "replica not in sync");
  }
  if (!wait_for_room()) return make_error(ErrorCode::kUnavailable, "secondary disconnected");
  FTD_ASSIGN_OR_RETURN(Captured c, capture(/*keep_paused=*/true));
  const uint64_t epoch = c.epoch;
  queue_captured(std::move(c));
  MutexLock lock(mu_);
  const auto deadline = Clock::now() + timeout;
  while (acked_epoch_.load() < epoch && connected_ && !stopping_)
    if (!cv_.wait_until(mu_, deadline)) break;
  if (acked_epoch_.load() < epoch)
    return make_error(ErrorCode::kTimeout, "final checkpoint {} not acknowledged within {} ms{}",
                      epoch, timeout.count(), connected_ ? "" : " (secondary disconnected)");
  return epoch;
}

Status CheckpointPipeline::resume_after_final() { return engine_.resume(); }

Status CheckpointPipeline::ship(Captured& c) {
  const auto started = Clock::now();
  // Deltas straight against the shadow, into buffers reused from the last
  // checkpoint: no gathered copy of the base pages, no first-touch faults.
  CheckpointInput in{.epoch = c.epoch,
                     .base_epoch = c.base_epoch,
                     .flags = c.flags,
                     .page_size = static_cast<uint32_t>(page_size_),
                     .page_indices = c.pages,
                     .pages = c.contents,
                     .base_memory = c.xor_delta ? shadow_.bytes() : std::span<const std::byte>{},
                     .device_state = c.device_state,
                     .disk = c.disk.get()};
  FTD_ASSIGN_OR_RETURN(EncodeStats es, encode_checkpoint(in, config_.compression, encoded_,
                                                         encode_scratch_, &encode_workers_));
  // The shadow takes the new contents, in page ranges on the encoder's workers
  // when there are enough pages to be worth their wake-up.
  const size_t n = c.pages.size();
  auto to_shadow = [&](size_t first, size_t end) {
    for (size_t i = first; i < end; ++i)
      std::memcpy(shadow_.data() + size_t{c.pages[i]} * page_size_,
                  c.contents.data() + i * page_size_, page_size_);
  };
  if (const size_t ways = encode_workers_.ways(); ways > 1 && n >= 256)
    encode_workers_.run([&](unsigned w) { to_shadow(n * w / ways, n * (w + 1) / ways); });
  else
    to_shadow(0, n);
  const auto encoded = Clock::now();
  FTD_TRY(transport_.send(c.epoch, encoded_));
  stats_.record_sent(es.raw_bytes, es.encoded_bytes, us_between(started, Clock::now()),
                     us_between(started, encoded));
  return ok();
}

void CheckpointPipeline::ship_loop() {
  while (true) {
    Captured c;
    {
      MutexLock lock(mu_);
      while (!stopping_ && !(connected_ && !ship_queue_.empty())) cv_.wait(mu_);
      if (stopping_) return;
      c = std::move(ship_queue_.front());
      ship_queue_.pop_front();
      if (c.generation != generation_) continue;  // belongs to a stream that broke
      shipping_ = true;
    }
    cv_.notify_all();
    auto shipped = ship(c);
    MutexLock lock(mu_);
    shipping_ = false;
    cv_.notify_all();
    if (spare_buffers_.size() < config_.max_inflight + 1) {
      c.contents.clear();
      spare_buffers_.push_back(std::move(c.contents));
    }
    if (!shipped) {
      spdlog::warn("ship.failed epoch={} error=\"{}\"", c.epoch, shipped.error().to_string());
      // A send of a stream that was already replaced says nothing about the new one.
      if (c.generation != generation_) continue;
      if (c.flags & kFlagSyncChunk) need_full_sync_ = true;
      connected_ = false;  // the owner of the transport reconnects and calls on_connected
    }
  }
}

void CheckpointPipeline::start() {
  if (loop_thread_.joinable()) return;
  {
    MutexLock lock(mu_);
    loop_stopping_ = false;
  }
  spdlog::info("checkpoint.policy policy={} min_ms={} max_ms={}", to_string(config_.epochs.kind),
               config_.epochs.min.count(), config_.epochs.max.count());
  loop_thread_ = std::thread([this] {
    // The first step (the initial sync) starts at once, as it always did.
    Clock::time_point last = Clock::now() - config_.epochs.max, not_before{};
    Clock::time_point last_warn{};
    while (true) {
      const std::optional<CheckpointTrigger> trigger = wait_for_trigger(last, not_before);
      if (!trigger) return;
      last = Clock::now();
      if (auto st = step(); !st) {
        if (Clock::now() - last_warn > std::chrono::seconds(2)) {
          spdlog::warn("checkpoint.skipped error=\"{}\"", st.error().to_string());
          last_warn = Clock::now();
        }
        not_before = Clock::now() + std::chrono::milliseconds(50);
        continue;
      }
      stats_.record_trigger(*trigger == CheckpointTrigger::kOutput);
      if (throttled_) {
        const uint64_t captured = captured_epoch_.load(), acked = acked_epoch_.load();
        MutexLock lock(mu_);
        const double lag = lag_ms();
        lock.unlock();
        throttled_->after_checkpoint(captured > acked ? captured - acked : 0, lag);
      }
    }
  });
  if (throttled_) throttled_->start();
}

void CheckpointPipeline::stop() {
  {
    MutexLock lock(mu_);
    if (!loop_thread_.joinable()) return;
    // Not stopping_: that one ends the ship thread, which runs until destruction.
    loop_stopping_ = true;
  }
  cv_.notify_all();
  loop_thread_.join();
  if (throttled_) throttled_->stop();  // a guest the throttle stopped runs again
  MutexLock lock(mu_);
  loop_stopping_ = false;
}

double CheckpointPipeline::lag_ms() const {
  if (unacked_since_.empty()) return 0;
  return std::chrono::duration<double, std::milli>(Clock::now() - unacked_since_.begin()->second)
      .count();
}

PipelineStats CheckpointPipeline::stats() const {
  PipelineStats s;
  stats_.fill(s);
  MutexLock lock(mu_);
  s.epoch = captured_epoch_.load();
  s.acked_epoch = acked_epoch_.load();
  s.lag_epochs = s.epoch > s.acked_epoch ? s.epoch - s.acked_epoch : 0;
  s.lag_ms = lag_ms();
  if (throttled_) s.throttle = throttled_->stats();
  s.connected = connected_;
  s.disk = disk_progress_;
  return s;
}

}  // namespace ftd
