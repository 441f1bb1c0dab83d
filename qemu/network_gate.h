// The QEMU engine's output gate: the guest NIC's output-commit proxy seen by
// the checkpoint pipeline. advance_epoch() runs while the guest is paused,
// commit() on the replication client's thread; NetworkProxy makes both safe.
#pragma once

#include <memory>

#include "checkpoint/transport.h"
#include "net/network_proxy.h"

namespace ftd {

class NetworkGate final : public OutputGate {
 public:
  explicit NetworkGate(std::unique_ptr<net::NetworkProxy> proxy) : proxy_(std::move(proxy)) {}

  void advance_epoch() override { proxy_->advance_epoch(); }
  void commit(uint64_t epoch) override { proxy_->commit(epoch); }
  void set_passthrough() override { proxy_->set_passthrough(); }
  void hold() override { proxy_->hold(); }
  void set_release_unacked(std::function<bool()> allowed) override {
    proxy_->set_release_unacked(std::move(allowed));
  }
  void set_output_listener(std::function<void()> listener) override {
    proxy_->set_output_listener(std::move(listener));
  }
  void fence() override { proxy_->fence(); }
  Stats stats() const override {
    auto s = proxy_->stats();
    return {s.frames_held,  s.frames_released, s.frames_dropped,
            s.hold_samples, s.hold_p50_us,     s.hold_p99_us};
  }

  net::NetworkProxy& proxy() { return *proxy_; }

 private:
  std::unique_ptr<net::NetworkProxy> proxy_;
};

}  // namespace ftd
