#include "synthetic/message_log_gate.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

namespace ftd {

Result<std::unique_ptr<MessageLogGate>> MessageLogGate::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd) return errno_error("open output log " + path);
  return std::unique_ptr<MessageLogGate>(new MessageLogGate(std::move(fd)));
}

MessageLogGate::MessageLogGate(UniqueFd fd)
    : fd_(std::move(fd)), buffer_([this](Message&& m) { release(m); }) {}

void MessageLogGate::release(const Message& m) {
  append(fmt::format("msg {}\n", m.number));
  const auto held = std::chrono::steady_clock::now() - m.pushed;
  MutexLock lock(hold_mu_);
  hold_times_.add(std::chrono::duration<double, std::micro>(held).count());
}

void MessageLogGate::append(const std::string& line) {
  // One write() per line: it reaches the page cache at once, so a SIGKILL
  // right after cannot lose a line the process considered released.
  if (::write(fd_.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    spdlog::error("output_log.write_failed errno={}", errno);
}

void MessageLogGate::commit(uint64_t epoch) {
  append(fmt::format("commit {}\n", epoch));
  buffer_.commit(epoch);
}

OutputGate::Stats MessageLogGate::stats() const {
  auto s = buffer_.stats();
  MutexLock lock(hold_mu_);
  const HoldTimeStats::Summary h = hold_times_.summary();
  return {s.held, s.released, s.dropped, h.count, h.p50_us, h.p99_us};
}

}  // namespace ftd
