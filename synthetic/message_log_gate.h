// Output of the synthetic workload: numbered messages, held under output
// commit and appended to a log file once released ("msg <n>"), preceded by
// the commit that released them ("commit <epoch>"). The file is what a
// client of the synthetic guest "saw"; tests read it after killing the primary.
#pragma once

#include <chrono>
#include <string>

#include "checkpoint/output_commit_buffer.h"
#include "checkpoint/transport.h"
#include "common/hold_time_stats.h"
#include "common/mutex.h"
#include "common/unique_fd.h"

namespace ftd {

class MessageLogGate : public OutputGate {
 public:
  static Result<std::unique_ptr<MessageLogGate>> open(const std::string& path);

  void push(uint64_t message) { buffer_.push({message, std::chrono::steady_clock::now()}); }
  void advance_epoch() override { buffer_.advance_epoch(); }
  void commit(uint64_t epoch) override;
  void set_passthrough() override { buffer_.set_passthrough(); }
  void hold() override { buffer_.hold(); }
  void set_release_unacked(std::function<bool()> allowed) override {
    buffer_.set_release_unacked(std::move(allowed));
  }
  void set_output_listener(std::function<void()> listener) override {
    buffer_.set_on_held(std::move(listener));
  }
  void fence() override {
    buffer_.fence([](Message&&) {});
  }
  Stats stats() const override;

 private:
  struct Message {
    uint64_t number;
    std::chrono::steady_clock::time_point pushed;
  };
  explicit MessageLogGate(UniqueFd fd);
  void append(const std::string& line);
  void release(const Message& m);
  UniqueFd fd_;
  mutable Mutex hold_mu_;
  HoldTimeStats hold_times_ FTD_GUARDED_BY(hold_mu_);
  OutputCommitBuffer<Message> buffer_;  // last: its sink uses the members above
};

}  // namespace ftd
