// The daemon's recent events: a bounded ring of the state changes and
// decisions it logs (vm.state, vm.role, sync.start, failover.*, ...), for the
// status page, `ftctl events` and the `ftd_events_total` counters.
//
// Fed by the logger rather than by extra calls: every such decision is
// already logged once, with its evidence, at the one place that makes it
// (common/vm_state.cc, roles/managed_vm.cc, ...). Recording it a second time
// at each of those places would duplicate every call site; a spdlog sink sees
// them all. It keeps lines whose event name matches kTrackedPrefixes.
//
// Threads: log() runs on whatever thread logs (possibly under that
// component's own lock), so mu_ is a leaf lock: nothing is called while
// holding it. Readers (page, gRPC stream) copy out under it.
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/mutex.h"
#include "ftd.pb.h"

namespace ftd {

class EventJournal {
 public:
  explicit EventJournal(size_t capacity = 256) : capacity_(capacity) {}

  // Records `line` ("name key=value ...") when its name is tracked.
  void log(std::string_view line) FTD_EXCLUDES(mu_);

  // Events with seq > after_seq, for `vm` (empty: all; events that name no
  // VM match every VM), oldest first. `newest` (optional) gets the newest seq
  // looked at, matching or not: the next call's after_seq.
  std::vector<v1::Event> since(uint64_t after_seq, const std::string& vm = "",
                               uint64_t* newest = nullptr) const FTD_EXCLUDES(mu_);
  uint64_t last_seq() const FTD_EXCLUDES(mu_);
  // Blocks until an event newer than after_seq exists or `timeout` passes.
  void wait_for_newer(uint64_t after_seq, std::chrono::milliseconds timeout) const
      FTD_EXCLUDES(mu_);
  // How many of each event were seen since start, by (vm, name).
  std::map<std::pair<std::string, std::string>, uint64_t> counts() const FTD_EXCLUDES(mu_);

  // A sink that forwards every formatted payload to `journal`; add it to the
  // daemon's logger. Holds the journal alive.
  static std::shared_ptr<spdlog::sinks::sink> sink(std::shared_ptr<EventJournal> journal);

  static bool tracked(std::string_view name);

 private:
  const size_t capacity_;
  mutable Mutex mu_;
  mutable CondVar changed_;
  std::deque<v1::Event> ring_ FTD_GUARDED_BY(mu_);
  uint64_t seq_ FTD_GUARDED_BY(mu_) = 0;
  std::map<std::pair<std::string, std::string>, uint64_t> counts_ FTD_GUARDED_BY(mu_);
};

// The value of `key=` in a structured line ("vm=web1" -> "web1"); quoted
// values lose their quotes. Empty when absent.
std::string field_value(std::string_view line, std::string_view key);

}  // namespace ftd
