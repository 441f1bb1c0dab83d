// A std::mutex the thread-safety analysis understands, its scoped lock, and a
// condition variable that waits on it. Use these instead of std::mutex for
// shared state so `FTD_GUARDED_BY(mu_)` members are checked at compile time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/thread_annotations.h"

namespace ftd {

class FTD_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() FTD_ACQUIRE() { mu_.lock(); }
  void unlock() FTD_RELEASE() { mu_.unlock(); }
  bool try_lock() FTD_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope. `unlock()`/`lock()` let a scope drop the lock
// around blocking I/O (say why at the call site).
class FTD_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) FTD_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() FTD_RELEASE() {
    if (held_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void unlock() FTD_RELEASE() {
    mu_.unlock();
    held_ = false;
  }
  void lock() FTD_ACQUIRE() {
    mu_.lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// Waits on a Mutex the caller holds. Predicates run with the mutex held; the
// analysis cannot see into lambdas, so annotate captured reads at the caller.
class CondVar {
 public:
  void notify_one() { cv_.notify_one(); }
  void notify_all() { cv_.notify_all(); }

  void wait(Mutex& mu) FTD_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // The predicate forms skip the analysis inside their bodies only: callers are
  // still checked to hold `mu`, but clang cannot tie a predicate lambda's
  // FTD_REQUIRES(x.mu_) to the parameter `mu`, and would reject every caller.
  template <typename Pred>
  void wait(Mutex& mu, Pred pred) FTD_REQUIRES(mu) FTD_NO_THREAD_SAFETY_ANALYSIS {
    while (!pred()) wait(mu);
  }
  // False on timeout.
  template <typename Clock, typename Duration>
  bool wait_until(Mutex& mu, std::chrono::time_point<Clock, Duration> deadline) FTD_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const bool signalled = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }
  // The predicate's final value (false: timed out with it still false).
  template <typename Clock, typename Duration, typename Pred>
  bool wait_until(Mutex& mu, std::chrono::time_point<Clock, Duration> deadline, Pred pred)
      FTD_REQUIRES(mu) FTD_NO_THREAD_SAFETY_ANALYSIS {
    while (!pred()) {
      if (!wait_until(mu, deadline)) return pred();
    }
    return true;
  }
  template <typename Rep, typename Period, typename Pred>
  bool wait_for(Mutex& mu, std::chrono::duration<Rep, Period> timeout, Pred pred) FTD_REQUIRES(mu) {
    return wait_until(mu, std::chrono::steady_clock::now() + timeout, std::move(pred));
  }

 private:
  std::condition_variable cv_;
};

}  // namespace ftd
