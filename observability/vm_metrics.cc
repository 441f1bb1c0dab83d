#include "observability/vm_metrics.h"

#include <functional>

#include "proto/status_mapping.h"

namespace ftd {
namespace {

using Type = MetricFamily::Type;
using Getter = std::function<double(const v1::VmStatus&)>;

// One row per plain per-VM number: name, type, help, value; `primary_only`
// rows are left out for a secondary (it has no pause, lag or held output).
struct Row {
  const char* name;
  Type type;
  const char* help;
  Getter value;
  bool primary_only = false;
};

double us_to_s(uint64_t us) { return static_cast<double>(us) / 1e6; }
double num(uint64_t v) { return static_cast<double>(v); }

const std::vector<Row>& rows() {
  static const std::vector<Row> kRows = {
      {"ftd_epoch", Type::kGauge, "Last captured (primary) or applied (secondary) epoch.",
       [](auto& s) { return num(s.epoch()); }},
      {"ftd_acked_epoch", Type::kGauge, "Last epoch the secondary acknowledged.",
       [](auto& s) { return num(s.acked_epoch()); }},
      {"ftd_checkpoints", Type::kCounter,
       "Checkpoints captured (primary) or applied (secondary) since the daemon started.",
       [](auto& s) { return num(s.checkpoints_total()); }},
      {"ftd_checkpoints_per_second", Type::kGauge, "Checkpoint rate over the last 5 s.",
       [](auto& s) { return s.checkpoints_per_sec(); }},
      {"ftd_pause_p50_seconds", Type::kGauge, "Median guest pause over the recent 2048 pauses.",
       [](auto& s) { return us_to_s(s.pause_p50_us()); }, true},
      {"ftd_pause_p99_seconds", Type::kGauge, "99th percentile guest pause, recent 2048 pauses.",
       [](auto& s) { return us_to_s(s.pause_p99_us()); }, true},
      {"ftd_lag_epochs", Type::kGauge, "Captured minus acknowledged epochs.",
       [](auto& s) { return num(s.lag_epochs()); }, true},
      {"ftd_lag_seconds", Type::kGauge, "Age of the oldest unacknowledged checkpoint.",
       [](auto& s) { return s.lag_ms() / 1e3; }, true},
      {"ftd_output_held", Type::kGauge, "Guest output items held until their epoch is acked.",
       [](auto& s) { return num(s.output_held()); }, true},
      {"ftd_output_hold_p50_seconds", Type::kGauge,
       "Median time released output was held (the latency output commit adds), recent window.",
       [](auto& s) { return s.output_hold_p50_ms() / 1e3; }, true},
      {"ftd_output_hold_p99_seconds", Type::kGauge,
       "99th percentile time released output was held, recent window.",
       [](auto& s) { return s.output_hold_p99_ms() / 1e3; }, true},
      {"ftd_epoch_min_seconds", Type::kGauge,
       "Shortest gap between checkpoints the epoch policy allows (fixed: the interval).",
       [](auto& s) { return s.epoch_min_ms() / 1e3; }, true},
      {"ftd_epoch_max_seconds", Type::kGauge,
       "Longest gap between checkpoints (fixed: the interval).",
       [](auto& s) { return s.epoch_max_ms() / 1e3; }, true},
      {"ftd_throttle_active", Type::kGauge,
       "1 while the overload throttle slows the guest down (--throttle on).",
       [](auto& s) { return s.throttle_active() ? 1.0 : 0.0; }, true},
      {"ftd_throttle_duty_ratio", Type::kGauge,
       "Fraction of each throttle window the guest may run (1: not throttled).",
       [](auto& s) { return s.throttle_enabled() ? s.throttle_duty() : 1.0; }, true},
      {"ftd_throttle_starts", Type::kCounter, "Times the overload throttle engaged.",
       [](auto& s) { return num(s.throttle_starts()); }, true},
      {"ftd_throttle_guest_stopped_seconds", Type::kCounter,
       "Guest run time the overload throttle took away.",
       [](auto& s) { return s.throttle_stopped_s(); }, true},
      {"ftd_output_released", Type::kCounter, "Guest output items released after their ack.",
       [](auto& s) { return num(s.output_released()); }, true},
      {"ftd_wire_bytes", Type::kCounter,
       "Checkpoint bytes on the wire: sent (primary) or received (secondary).",
       [](auto& s) { return num(s.wire_bytes_total()); }},
      {"ftd_raw_bytes", Type::kCounter, "Dirty bytes before XOR-delta and compression.",
       [](auto& s) { return num(s.raw_bytes_total()); }, true},
      {"ftd_wire_bytes_per_second", Type::kGauge, "Encoded bytes sent per second, last 5 s.",
       [](auto& s) { return s.bytes_per_sec(); }, true},
      {"ftd_compression_ratio", Type::kGauge, "Raw dirty bytes / bytes on the wire, all time.",
       [](auto& s) { return s.compression_ratio(); }, true},
      {"ftd_sync_progress_ratio", Type::kGauge, "Initial sync progress, 0..1.",
       [](auto& s) { return s.sync_progress(); }, true},
      {"ftd_dirty_pages_last", Type::kGauge, "Dirty pages in the last checkpoint.",
       [](auto& s) { return num(s.dirty_pages_last()); }, true},
      {"ftd_apply_seconds_last", Type::kGauge, "Last verify+apply time on the secondary.",
       [](auto& s) { return us_to_s(s.apply_us_last()); }},
      {"ftd_resyncing", Type::kGauge, "1 while a resync overwrites the replica (secondary).",
       [](auto& s) { return s.resyncing() ? 1.0 : 0.0; }},
      {"ftd_sync_chunks_applied", Type::kCounter, "Sync chunks applied (secondary).",
       [](auto& s) { return num(s.sync_chunks_applied()); }},
      {"ftd_undo_bytes", Type::kGauge, "Undo log size on tmpfs during a resync (secondary).",
       [](auto& s) { return num(s.undo_bytes()); }},
      {"ftd_memory_bytes", Type::kGauge, "Guest RAM size.",
       [](auto& s) { return num(s.memory_bytes()); }},
      {"ftd_disk_bytes", Type::kGauge, "Replicated disk size (0: none).",
       [](auto& s) { return num(s.disk_bytes()); }},
      {"ftd_disk_protected", Type::kGauge,
       "1 when the replica disk is a consistent copy at the replica's epoch.",
       [](auto& s) { return s.disk_protected() ? 1.0 : 0.0; }},
      {"ftd_disk_written_bytes", Type::kCounter,
       "Disk write bytes captured (primary) or applied (secondary).",
       [](auto& s) { return num(s.disk_bytes_applied()); }},
  };
  return kRows;
}

const std::vector<v1::VmState>& all_states() {
  static const std::vector<v1::VmState> kStates = [] {
    std::vector<v1::VmState> v;
    for (int i = v1::VmState_MIN; i <= v1::VmState_MAX; ++i)
      if (v1::VmState_IsValid(i) && i != v1::VM_STATE_UNSPECIFIED)
        v.push_back(static_cast<v1::VmState>(i));
    return v;
  }();
  return kStates;
}

MetricFamily info_family(const v1::StatusReply& status) {
  MetricFamily f{"ftd_vm_info", "Always 1: the VM's role, engine, state and peer as labels.",
                 Type::kGauge};
  for (const auto& s : status.vms())
    f.gauge({{"vm", s.name()},
             {"role", s.role()},
             {"engine", s.engine()},
             {"state", std::string(state_name(s.state()))},
             {"peer", s.peer()},
             {"epoch_policy", s.epoch_policy()}},
            1);
  return f;
}

MetricFamily trigger_family(const v1::StatusReply& status) {
  MetricFamily f{"ftd_checkpoint_triggers",
                 "Checkpoints by the rule that started them: output waiting (output-driven "
                 "policy) or the interval timer.",
                 Type::kCounter};
  for (const auto& s : status.vms()) {
    if (s.role() != "primary") continue;
    f.counter({{"vm", s.name()}, {"trigger", "output"}}, num(s.checkpoints_by_output()));
    f.counter({{"vm", s.name()}, {"trigger", "timer"}}, num(s.checkpoints_by_timer()));
  }
  return f;
}

MetricFamily state_family(const v1::StatusReply& status) {
  MetricFamily f{"ftd_vm_state", "1 for the state the VM is in, 0 for every other state.",
                 Type::kGauge};
  for (const auto& s : status.vms())
    for (v1::VmState st : all_states())
      f.gauge({{"vm", s.name()}, {"state", std::string(state_name(st))}}, s.state() == st);
  return f;
}

MetricFamily pause_family(const v1::StatusReply& status) {
  MetricFamily f{"ftd_pause_seconds", "Guest pause per checkpoint since the daemon started.",
                 Type::kHistogram};
  for (const auto& s : status.vms()) {
    if (!s.has_pause_histogram()) continue;
    const auto& h = s.pause_histogram();
    std::vector<double> bounds, counts;
    for (uint64_t b : h.upper_bounds_us()) bounds.push_back(us_to_s(b));
    for (uint64_t c : h.counts()) counts.push_back(num(c));
    f.histogram({{"vm", s.name()}}, bounds, counts, us_to_s(h.sum_us()));
  }
  return f;
}

std::vector<MetricFamily> failover_families(const v1::StatusReply& status) {
  MetricFamily automatic{"ftd_failover_automatic", "1 when automatic failover is armed for the VM.",
                         Type::kGauge};
  MetricFamily term{"ftd_failover_term", "Arbiter lease term or quorum ring id.", Type::kGauge};
  MetricFamily heartbeat{"ftd_heartbeat_age_seconds",
                         "Age of the newest valid heartbeat from the peer (-1: never).",
                         Type::kGauge};
  MetricFamily received{"ftd_heartbeats_received", "Valid heartbeats received.", Type::kCounter};
  MetricFamily rejected{"ftd_heartbeats_rejected",
                        "Heartbeats rejected (bad MAC, replayed, malformed, wrong peer).",
                        Type::kCounter};
  for (const auto& s : status.vms()) {
    if (!s.has_failover()) continue;
    const auto& fo = s.failover();
    Labels vm{{"vm", s.name()}};
    automatic.gauge(vm, fo.automatic());
    if (!fo.automatic()) continue;
    term.gauge(vm, num(fo.term()));
    heartbeat.gauge(vm, fo.heartbeat_age_ms() < 0 ? -1.0 : fo.heartbeat_age_ms() / 1e3);
    received.counter(vm, num(fo.heartbeats_received()));
    rejected.counter(vm, num(fo.heartbeats_rejected()));
  }
  return {automatic, term, heartbeat, received, rejected};
}

std::vector<MetricFamily> event_families(const v1::StatusReply& status, const EventCounts& events) {
  MetricFamily all{"ftd_events", "State changes and decisions logged, by event name.",
                   Type::kCounter};
  MetricFamily failovers{"ftd_failovers", "Failovers this daemon completed (failover.done events).",
                         Type::kCounter};
  for (const auto& [key, n] : events)
    all.counter({{"vm", key.first}, {"event", key.second}}, num(n));
  for (const auto& s : status.vms()) {
    uint64_t done = 0;
    for (const auto& [key, n] : events)
      if (key.second == "failover.done" && (key.first == s.name() || key.first.empty())) done += n;
    failovers.counter({{"vm", s.name()}}, num(done));
  }
  return {all, failovers};
}

}  // namespace

std::vector<MetricFamily> vm_metric_families(const v1::StatusReply& status,
                                             const EventCounts& events) {
  std::vector<MetricFamily> out{info_family(status), state_family(status)};
  for (const Row& row : rows()) {
    MetricFamily f{row.name, row.help, row.type};
    for (const auto& s : status.vms()) {
      if (row.primary_only && s.role() != "primary") continue;
      Labels vm{{"vm", s.name()}};
      if (row.type == Type::kCounter)
        f.counter(vm, row.value(s));
      else
        f.gauge(vm, row.value(s));
    }
    out.push_back(std::move(f));
  }
  out.push_back(pause_family(status));
  out.push_back(trigger_family(status));
  for (auto& f : failover_families(status)) out.push_back(std::move(f));
  for (auto& f : event_families(status, events)) out.push_back(std::move(f));
  return out;
}

}  // namespace ftd
