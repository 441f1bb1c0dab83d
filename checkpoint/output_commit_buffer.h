// Output commit: what the guest sends out is held, tagged with the epoch in
// which it was produced, and released only after that epoch's checkpoint is
// acknowledged by the secondary. Items leave in exactly the order they came.
//
// Epoch tagging: the pipeline calls advance_epoch() while the guest is paused,
// so every item pushed afterwards belongs to the next checkpoint. An item read
// late (e.g. a frame still in a socket buffer) gets a later epoch, never an
// earlier one, which only delays it.
//
// Thread-safe. The sink runs outside mu_ (under release_mu_ only), so a slow
// sink (a tap write) never blocks advance_epoch(), which the pipeline calls
// while the guest is paused.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "common/mutex.h"

namespace ftd {

template <typename T>
class OutputCommitBuffer {
 public:
  using Sink = std::function<void(T&&)>;

  // `first_epoch`: the epoch items pushed now belong to.
  explicit OutputCommitBuffer(Sink sink, uint64_t first_epoch = 1)
      : sink_(std::move(sink)), open_epoch_(first_epoch) {}

  // Holds `item` under the currently open epoch. Returns that epoch.
  uint64_t push(T item) FTD_EXCLUDES(mu_, release_mu_, listener_mu_) {
    bool held = false, alone = false;
    uint64_t epoch = 0;
    {
      MutexLock lock(mu_);
      if (!passthrough_) {
        held_.push_back({open_epoch_, std::move(item)});
        held = true;
        alone = static_cast<bool>(release_unacked_);
        epoch = open_epoch_;
      }
    }
    if (held) {
      {
        // Outside mu_ (the listener takes the pipeline's lock), under
        // listener_mu_: set_on_held() waits for a call in flight, so the
        // listener's owner may die once it has cleared it.
        MutexLock lock(listener_mu_);
        if (on_held_) on_held_();
      }
      if (alone) release_unacked();
      return epoch;
    }
    // Not protected any more (failed over / unprotected): straight out.
    MutexLock release_lock(release_mu_);
    sink_(std::move(item));
    MutexLock lock(mu_);
    ++released_;
    return open_epoch_;
  }

  // Called after every push() that held its item, outside mu_ (the
  // output-driven checkpoint policy wakes on it). Returns once no call of the
  // previous listener is running: clear it before its owner goes away.
  void set_on_held(std::function<void()> listener) FTD_EXCLUDES(mu_, listener_mu_) {
    MutexLock lock(listener_mu_);
    on_held_ = std::move(listener);
  }

  // Closes the open epoch; later items belong to the returned (next) epoch.
  uint64_t advance_epoch() FTD_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return ++open_epoch_;
  }

  // The secondary acknowledged `epoch`: release every item tagged <= epoch.
  // Returns how many items were released.
  size_t commit(uint64_t epoch) FTD_EXCLUDES(mu_, release_mu_) {
    MutexLock release_lock(release_mu_);  // keeps concurrent commits ordered
    std::vector<T> batch;
    {
      MutexLock lock(mu_);
      if (fenced_) return 0;
      while (!held_.empty() && held_.front().epoch <= epoch) {
        batch.push_back(std::move(held_.front().item));
        held_.pop_front();
      }
      if (epoch > committed_epoch_) committed_epoch_ = epoch;
    }
    for (auto& item : batch) sink_(std::move(item));
    MutexLock lock(mu_);
    released_ += batch.size();
    return batch.size();
  }

  // The primary is being abandoned (failover): held output is never sent.
  // `on_dropped` sees each discarded item (e.g. to account for its bytes).
  template <typename F>
  size_t drop_all(F&& on_dropped) FTD_EXCLUDES(mu_) {
    std::deque<Held> dropped;
    {
      MutexLock lock(mu_);
      dropped.swap(held_);
      dropped_ += dropped.size();
    }
    for (auto& h : dropped) on_dropped(std::move(h.item));
    return dropped.size();
  }
  size_t drop_all() {
    return drop_all([](T&&) {});
  }

  // The primary runs alone (failover decided so): items leave without acks,
  // in order, while `allowed()` holds. It is asked before every release, so
  // once the arbiter's right lapses nothing more leaves (self-fencing); items
  // then stay held. nullptr: back to releasing on acks only.
  void set_release_unacked(std::function<bool()> allowed) FTD_EXCLUDES(mu_, release_mu_) {
    {
      MutexLock lock(mu_);
      if (fenced_) return;
      release_unacked_ = std::move(allowed);
    }
    release_unacked();
  }
  // Releases everything held if running alone is (still) allowed.
  size_t release_unacked() FTD_EXCLUDES(mu_, release_mu_) {
    MutexLock release_lock(release_mu_);
    std::function<bool()> allowed;
    {
      MutexLock lock(mu_);
      allowed = release_unacked_;
    }
    if (!allowed || !allowed()) return 0;
    std::vector<T> batch;
    {
      MutexLock lock(mu_);
      for (auto& h : held_) batch.push_back(std::move(h.item));
      held_.clear();
    }
    for (auto& item : batch) sink_(std::move(item));
    MutexLock lock(mu_);
    released_ += batch.size();
    return batch.size();
  }

  // Lost arbitration: held output is discarded and nothing is released ever
  // again (commit, passthrough and running alone become no-ops). Later items
  // are still accepted and held (the guest is being stopped).
  template <typename F>
  size_t fence(F&& on_dropped) FTD_EXCLUDES(mu_, release_mu_) {
    {
      MutexLock release_lock(release_mu_);  // waits for a release in progress
      MutexLock lock(mu_);
      fenced_ = true;
      passthrough_ = false;
      release_unacked_ = nullptr;
    }
    return drop_all(std::forward<F>(on_dropped));
  }

  // Stop holding: releases everything held, then passes new items straight through.
  void set_passthrough() FTD_EXCLUDES(mu_, release_mu_) {
    MutexLock release_lock(release_mu_);
    std::deque<Held> held;
    {
      MutexLock lock(mu_);
      if (fenced_) return;
      held.swap(held_);
      released_ += held.size();
      passthrough_ = true;  // from now on push() goes straight out, after these
    }
    for (auto& h : held) sink_(std::move(h.item));
  }

  // Hold again after set_passthrough(): items pushed from now on wait for
  // the ack of the open epoch (re-protection of a VM that ran unprotected).
  // No-op when fenced or already holding.
  void hold() FTD_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    if (!fenced_) passthrough_ = false;
  }

  struct Stats {
    uint64_t open_epoch = 0;
    uint64_t committed_epoch = 0;
    uint64_t held = 0;
    uint64_t released = 0;
    uint64_t dropped = 0;
  };
  Stats stats() const FTD_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return {open_epoch_, committed_epoch_, held_.size(), released_, dropped_};
  }

 private:
  struct Held {
    uint64_t epoch;
    T item;
  };
  const Sink sink_;
  // Serialises the sink so items leave in order. Order: release_mu_ before mu_.
  Mutex release_mu_;
  mutable Mutex mu_;
  std::deque<Held> held_ FTD_GUARDED_BY(mu_);
  uint64_t open_epoch_ FTD_GUARDED_BY(mu_);
  uint64_t committed_epoch_ FTD_GUARDED_BY(mu_) = 0;
  uint64_t released_ FTD_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ FTD_GUARDED_BY(mu_) = 0;
  bool passthrough_ FTD_GUARDED_BY(mu_) = false;
  bool fenced_ FTD_GUARDED_BY(mu_) = false;
  std::function<bool()> release_unacked_ FTD_GUARDED_BY(mu_);
  Mutex listener_mu_;  // never held with mu_
  std::function<void()> on_held_ FTD_GUARDED_BY(listener_mu_);
};

}  // namespace ftd
