// Output of the synthetic workload: numbered messages, held under output
// commit and appended to a log file once released ("msg <n>"), preceded by
// the commit that released them ("commit <epoch>"). The file is what a
// client of the synthetic guest "saw"; tests read it after killing the primary.
#pragma once

#include <string>

#include "checkpoint/output_commit_buffer.h"
#include "checkpoint/transport.h"
#include "common/unique_fd.h"

namespace ftd {

class MessageLogGate : public OutputGate {
 public:
  static Result<std::unique_ptr<MessageLogGate>> open(const std::string& path);

  void push(uint64_t message) { buffer_.push(message); }
  void advance_epoch() override { buffer_.advance_epoch(); }
  void commit(uint64_t epoch) override;
  void set_passthrough() override { buffer_.set_passthrough(); }
  void hold() override { buffer_.hold(); }
  void set_release_unacked(std::function<bool()> allowed) override {
    buffer_.set_release_unacked(std::move(allowed));
  }
  void fence() override {
    buffer_.fence([](uint64_t&&) {});
  }
  Stats stats() const override;

 private:
  explicit MessageLogGate(UniqueFd fd);
  void append(const std::string& line);
  UniqueFd fd_;
  OutputCommitBuffer<uint64_t> buffer_;
};

}  // namespace ftd
