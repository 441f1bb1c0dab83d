// One thread that runs submitted tasks one at a time and lives as long as
// this object. For work whose effects are tied to the lifetime of the
// thread that does it: a QEMU spawned with PR_SET_PDEATHSIG dies with the
// spawning *thread* (common/subprocess.h), so a daemon must not launch one
// from a gRPC handler thread, which the server may retire at any moment.
//
// Thread contract: run() from any thread (blocks until the task ran);
// the destructor finishes the task in progress, then joins.
#pragma once

#include <deque>
#include <functional>
#include <future>
#include <thread>
#include <type_traits>

#include "common/mutex.h"

namespace ftd {

class TaskThread {
 public:
  TaskThread() : thread_([this] { loop(); }) {}
  ~TaskThread() {
    {
      MutexLock lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  TaskThread(const TaskThread&) = delete;
  TaskThread& operator=(const TaskThread&) = delete;

  // Runs `f` on the task thread and returns its result.
  template <typename F>
  std::invoke_result_t<F> run(F f) FTD_EXCLUDES(mu_) {
    std::packaged_task<std::invoke_result_t<F>()> task(std::move(f));
    auto result = task.get_future();
    {
      MutexLock lock(mu_);
      queue_.emplace_back([&task] { task(); });
    }
    cv_.notify_all();
    return result.get();
  }

 private:
  void loop() FTD_EXCLUDES(mu_) {
    while (true) {
      std::function<void()> next;
      {
        MutexLock lock(mu_);
        while (!stop_ && queue_.empty()) cv_.wait(mu_);
        if (queue_.empty()) return;  // stop_ and nothing left
        next = std::move(queue_.front());
        queue_.pop_front();
      }
      next();
    }
  }

  Mutex mu_;
  CondVar cv_;
  bool stop_ FTD_GUARDED_BY(mu_) = false;
  std::deque<std::function<void()>> queue_ FTD_GUARDED_BY(mu_);
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace ftd
