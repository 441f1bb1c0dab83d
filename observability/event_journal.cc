#include "observability/event_journal.h"

#include <spdlog/details/null_mutex.h>

#include <array>

namespace ftd {
namespace {

// Role and state changes, decisions and their failures. Not the periodic
// lines (sync.progress, sync.round, checkpoint.applied): they would flush
// the ring of everything an operator wants to see.
constexpr std::array<std::string_view, 16> kTrackedPrefixes = {
    "vm.",  // vm.state, vm.role, vm.fenced, vm.protect_failed, vm.run_alone, ...
    "sync.start",
    "sync.queued",
    "failover.",  // failover.start/done/failed/rollback/activated
    "failover_fenced_peer",
    "replication.connected",
    "replication.disconnected",
    "replication.accepted",
    "replication.ended",
    "replication.replaced",
    "replica.open",
    "checkpoint.rejected",
    "control.call",
    "control.refused",
    "ftd.start",
    "ftd.stop",
};

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Forwards formatted payloads (the message only, no time/level prefix).
class JournalSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit JournalSink(std::shared_ptr<EventJournal> journal) : journal_(std::move(journal)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    journal_->log(std::string_view(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  std::shared_ptr<EventJournal> journal_;
};

}  // namespace

std::string field_value(std::string_view line, std::string_view key) {
  size_t pos = 0;
  while ((pos = line.find(key, pos)) != std::string_view::npos) {
    const bool starts_token = pos == 0 || line[pos - 1] == ' ';
    const size_t value = pos + key.size();
    if (starts_token && value < line.size() && line[value] == '=') {
      std::string_view rest = line.substr(value + 1);
      if (!rest.empty() && rest.front() == '"') {
        rest.remove_prefix(1);
        return std::string(rest.substr(0, rest.find('"')));
      }
      return std::string(rest.substr(0, rest.find(' ')));
    }
    pos = value;
  }
  return "";
}

bool EventJournal::tracked(std::string_view name) {
  for (std::string_view prefix : kTrackedPrefixes)
    if (name.starts_with(prefix)) return true;
  return false;
}

void EventJournal::log(std::string_view line) {
  const size_t space = line.find(' ');
  const std::string_view name = line.substr(0, space);
  if (name.empty() || !tracked(name)) return;
  v1::Event e;
  e.set_unix_ms(unix_ms_now());
  e.set_name(std::string(name));
  e.set_vm(field_value(line, "vm"));
  if (space != std::string_view::npos) e.set_fields(std::string(line.substr(space + 1)));
  {
    MutexLock lock(mu_);
    e.set_seq(++seq_);
    ++counts_[{e.vm(), e.name()}];
    ring_.push_back(std::move(e));
    while (ring_.size() > capacity_) ring_.pop_front();
  }
  changed_.notify_all();
}

std::vector<v1::Event> EventJournal::since(uint64_t after_seq, const std::string& vm,
                                           uint64_t* newest) const {
  MutexLock lock(mu_);
  if (newest) *newest = seq_;
  std::vector<v1::Event> out;
  for (const auto& e : ring_)
    if (e.seq() > after_seq && (vm.empty() || e.vm().empty() || e.vm() == vm)) out.push_back(e);
  return out;
}

uint64_t EventJournal::last_seq() const {
  MutexLock lock(mu_);
  return seq_;
}

void EventJournal::wait_for_newer(uint64_t after_seq, std::chrono::milliseconds timeout) const {
  MutexLock lock(mu_);
  changed_.wait_for(mu_, timeout, [&]() FTD_REQUIRES(mu_) { return seq_ > after_seq; });
}

std::map<std::pair<std::string, std::string>, uint64_t> EventJournal::counts() const {
  MutexLock lock(mu_);
  return counts_;
}

std::shared_ptr<spdlog::sinks::sink> EventJournal::sink(std::shared_ptr<EventJournal> journal) {
  return std::make_shared<JournalSink>(std::move(journal));
}

}  // namespace ftd
