// Output commit: what the guest sends out is held, tagged with the epoch in
// which it was produced, and released only after that epoch's checkpoint is
// acknowledged by the secondary. Items leave in exactly the order they came.
//
// Epoch tagging: the pipeline calls advance_epoch() while the guest is paused,
// so every item pushed afterwards belongs to the next checkpoint. An item read
// late (e.g. a frame still in a socket buffer) gets a later epoch, never an
// earlier one, which only delays it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace ftd {

template <typename T>
class OutputCommitBuffer {
 public:
  using Sink = std::function<void(T&&)>;

  // `first_epoch`: the epoch items pushed now belong to.
  explicit OutputCommitBuffer(Sink sink, uint64_t first_epoch = 1)
      : sink_(std::move(sink)), open_epoch_(first_epoch) {}

  // Holds `item` under the currently open epoch. Returns that epoch.
  uint64_t push(T item) {
    {
      std::lock_guard lock(mu_);
      if (!passthrough_) {
        held_.push_back({open_epoch_, std::move(item)});
        return open_epoch_;
      }
    }
    // Not protected any more (failed over / unprotected): straight out.
    std::lock_guard release_lock(release_mu_);
    sink_(std::move(item));
    std::lock_guard lock(mu_);
    ++released_;
    return open_epoch_;
  }

  // Closes the open epoch; later items belong to the returned (next) epoch.
  uint64_t advance_epoch() {
    std::lock_guard lock(mu_);
    return ++open_epoch_;
  }

  // The secondary acknowledged `epoch`: release every item tagged <= epoch.
  // Returns how many items were released.
  size_t commit(uint64_t epoch) {
    std::lock_guard release_lock(release_mu_);  // keeps concurrent commits ordered
    std::vector<T> batch;
    {
      std::lock_guard lock(mu_);
      while (!held_.empty() && held_.front().epoch <= epoch) {
        batch.push_back(std::move(held_.front().item));
        held_.pop_front();
      }
      if (epoch > committed_epoch_) committed_epoch_ = epoch;
    }
    for (auto& item : batch) sink_(std::move(item));
    std::lock_guard lock(mu_);
    released_ += batch.size();
    return batch.size();
  }

  // The primary is being abandoned (failover): held output is never sent.
  size_t drop_all() {
    std::lock_guard lock(mu_);
    size_t n = held_.size();
    held_.clear();
    dropped_ += n;
    return n;
  }

  // Stop holding: releases everything held, then passes new items straight through.
  void set_passthrough() {
    std::lock_guard release_lock(release_mu_);
    std::lock_guard lock(mu_);
    for (auto& h : held_) sink_(std::move(h.item));
    released_ += held_.size();
    held_.clear();
    passthrough_ = true;
  }

  struct Stats {
    uint64_t open_epoch = 0;
    uint64_t committed_epoch = 0;
    uint64_t held = 0;
    uint64_t released = 0;
    uint64_t dropped = 0;
  };
  Stats stats() const {
    std::lock_guard lock(mu_);
    return {open_epoch_, committed_epoch_, held_.size(), released_, dropped_};
  }

 private:
  struct Held {
    uint64_t epoch;
    T item;
  };
  Sink sink_;
  mutable std::mutex mu_;
  std::mutex release_mu_;  // order: release_mu_ before mu_
  std::deque<Held> held_;
  uint64_t open_epoch_;
  uint64_t committed_epoch_ = 0;
  uint64_t released_ = 0;
  uint64_t dropped_ = 0;
  bool passthrough_ = false;
};

}  // namespace ftd
