#include "common/range_workers.h"

#include <algorithm>

namespace ftd {

RangeWorkers::RangeWorkers(unsigned ways) : ways_(std::max(ways, 1u)) {
  workers_.reserve(ways_ - 1);
  for (unsigned i = 1; i < ways_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

RangeWorkers::~RangeWorkers() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void RangeWorkers::run(const std::function<void(unsigned)>& task) {
  if (ways_ == 1) {
    task(0);
    return;
  }
  {
    MutexLock lock(mu_);
    task_ = &task;
    pending_ = ways_ - 1;
    ++generation_;
  }
  work_cv_.notify_all();
  task(0);
  MutexLock lock(mu_);
  while (pending_ != 0) done_cv_.wait(mu_);
  task_ = nullptr;
}

void RangeWorkers::worker_loop(unsigned index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(unsigned)>* task;
    {
      MutexLock lock(mu_);
      while (!stopping_ && generation_ == seen) work_cv_.wait(mu_);
      if (stopping_) return;
      seen = generation_;
      task = task_;
    }
    (*task)(index);
    bool last;
    {
      MutexLock lock(mu_);
      last = --pending_ == 0;
    }
    if (last) done_cv_.notify_one();
  }
}

}  // namespace ftd
