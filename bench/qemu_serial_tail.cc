#include "bench/qemu_serial_tail.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>

#include "common/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

namespace ftd::bench {

SerialTail::SerialTail(std::string path, std::chrono::milliseconds poll)
    : path_(std::move(path)), poll_(poll), thread_([this] { run(); }) {}

SerialTail::~SerialTail() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void SerialTail::run() {
  UniqueFd fd;
  std::string partial;
  char buf[65536];
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    if (!fd) fd.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));  // QEMU creates it
    std::vector<std::string> complete;
    if (fd) {
      ssize_t n;
      while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) {
        partial.append(buf, static_cast<size_t>(n));
        size_t start = 0, nl;
        while ((nl = partial.find('\n', start)) != std::string::npos) {
          std::string line = partial.substr(start, nl - start);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          complete.push_back(std::move(line));
          start = nl + 1;
        }
        partial.erase(0, start);
      }
    }
    const auto now = Clock::now();
    lock.lock();
    for (auto& l : complete) lines_.push_back({now, std::move(l)});
    if (!complete.empty()) cv_.notify_all();
    cv_.wait_for(lock, poll_, [this] { return stop_; });
  }
}

std::vector<SerialTail::Line> SerialTail::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

size_t SerialTail::size() const {
  std::lock_guard lock(mu_);
  return lines_.size();
}

Result<SerialTail::Line> SerialTail::wait_for(const std::string& needle,
                                              std::chrono::milliseconds timeout,
                                              size_t from) const {
  std::unique_lock lock(mu_);
  const auto deadline = Clock::now() + timeout;
  size_t next = from;
  while (true) {
    for (; next < lines_.size(); ++next)
      if (lines_[next].text.find(needle) != std::string::npos) return lines_[next];
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && next >= lines_.size())
      return make_error(ErrorCode::kTimeout, "no console line with '{}' in {} ms (log {})", needle,
                        timeout.count(), path_);
  }
}

BenchIterations bench_iterations(const std::vector<SerialTail::Line>& lines,
                                 SerialTail::Clock::time_point from,
                                 SerialTail::Clock::time_point to) {
  std::vector<double> host, guest;
  std::optional<std::pair<unsigned long long, SerialTail::Clock::time_point>> prev;
  for (const auto& l : lines) {
    auto pos = l.text.find("ftd-bench iter=");
    if (pos == std::string::npos) continue;
    unsigned long long iter = 0;
    double ms = 0;
    if (std::sscanf(l.text.c_str() + pos, "ftd-bench iter=%llu ms=%lf", &iter, &ms) != 2) continue;
    if (prev && prev->first + 1 == iter && prev->second >= from && l.at <= to) {
      host.push_back(std::chrono::duration<double, std::milli>(l.at - prev->second).count());
      guest.push_back(ms);
    }
    prev.emplace(iter, l.at);
  }
  BenchIterations r;
  r.iterations = host.size();
  if (host.empty()) return r;
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
  };
  r.host_ms_mean = mean(host);
  r.guest_ms_mean = mean(guest);
  std::sort(host.begin(), host.end());
  r.host_ms_p50 = host[host.size() / 2];
  return r;
}

}  // namespace ftd::bench
