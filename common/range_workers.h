// A fixed set of threads that run one function over `ways()` index ranges at
// a time: the caller's thread takes range 0, each worker one more range.
// Started once, so a run costs one wake-up per worker, not a thread creation
// (the checkpoint encoder and decoder run this 25+ times a second).
//
// Thread contract: run() from one thread at a time; it returns when every
// range is done. With ways() == 1 it is a plain call, no thread exists.
#pragma once

#include <cstddef>
#include <functional>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace ftd {

class RangeWorkers {
 public:
  // `ways` >= 1 (0 is treated as 1).
  explicit RangeWorkers(unsigned ways);
  ~RangeWorkers();
  RangeWorkers(const RangeWorkers&) = delete;
  RangeWorkers& operator=(const RangeWorkers&) = delete;

  unsigned ways() const { return ways_; }
  // Calls task(i) for every i in 0..ways()-1, concurrently; returns when all returned.
  void run(const std::function<void(unsigned)>& task) FTD_EXCLUDES(mu_);

 private:
  void worker_loop(unsigned index) FTD_EXCLUDES(mu_);

  const unsigned ways_;
  Mutex mu_;
  CondVar work_cv_;
  CondVar done_cv_;
  const std::function<void(unsigned)>* task_ FTD_GUARDED_BY(mu_) = nullptr;
  uint64_t generation_ FTD_GUARDED_BY(mu_) = 0;  // bumped per run; workers run once per bump
  unsigned pending_ FTD_GUARDED_BY(mu_) = 0;     // workers still busy with this generation
  bool stopping_ FTD_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;  // last member: started after the rest exists
};

}  // namespace ftd
