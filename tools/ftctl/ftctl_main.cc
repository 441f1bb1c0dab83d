// ftctl: operator CLI for ftd's control API.
//   ftctl --control ADDR status [--vm NAME] [--json] [--watch SEC]
//   ftctl --control ADDR protect|unprotect|failover|migrate --vm NAME
//   ftctl --control ADDR protect --peer HOST:PORT   (a VM that failed over here)
//   ftctl --control ADDR events [--vm NAME] [--json] [--no-replay]   (until Ctrl-C)
//   ftctl --control ADDR plan [--vm NAME] [--epoch-ms N] [--sample-s S] [--json]
// A TCP control address takes --tls-cert/--tls-key/--tls-ca (the daemon
// requires a client certificate there); a unix: socket needs none.
#include <grpcpp/grpcpp.h>

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/version.h"
#include "ftd.grpc.pb.h"
#include "planning/plan_proto.h"
#include "planning/plan_report.h"
#include "proto/status_mapping.h"
#include "security/address_policy.h"
#include "security/tls_options.h"
#include "tools/ftctl/events_command.h"

namespace {

using ftd::v1::Control;

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) {
    b /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", b, units[u]);
}

nlohmann::json to_json(const ftd::v1::FailoverInfo& f) {
  return {{"arbiter", f.arbiter()},
          {"automatic", f.automatic()},
          {"state", f.state()},
          {"decision", f.decision()},
          {"reason", f.reason()},
          {"term", f.term()},
          {"may_run_alone", f.may_run_alone()},
          {"arbiter_evidence", f.arbiter_evidence()},
          {"heartbeat_age_ms", f.heartbeat_age_ms()},
          {"ack_age_ms", f.ack_age_ms()},
          {"peer_role", f.peer_role()},
          {"last_error", f.last_error()},
          {"heartbeats_received", f.heartbeats_received()},
          {"heartbeats_rejected", f.heartbeats_rejected()}};
}

std::string age(int64_t ms) { return ms < 0 ? "never" : fmt::format("{} ms ago", ms); }

nlohmann::json to_json(const ftd::v1::VmStatus& s) {
  return {{"name", s.name()},
          {"role", s.role()},
          {"state", ftd::state_name(s.state())},
          {"engine", s.engine()},
          {"epoch", s.epoch()},
          {"acked_epoch", s.acked_epoch()},
          {"checkpoints_per_sec", s.checkpoints_per_sec()},
          {"last_pause_us", s.last_pause_us()},
          {"pause_p50_us", s.pause_p50_us()},
          {"pause_p99_us", s.pause_p99_us()},
          {"bytes_per_sec", s.bytes_per_sec()},
          {"compression_ratio", s.compression_ratio()},
          {"lag_epochs", s.lag_epochs()},
          {"lag_ms", s.lag_ms()},
          {"output_held", s.output_held()},
          {"output_released", s.output_released()},
          {"memory_bytes", s.memory_bytes()},
          {"dirty_pages_last", s.dirty_pages_last()},
          {"apply_us_last", s.apply_us_last()},
          {"sync_progress", s.sync_progress()},
          {"resyncing", s.resyncing()},
          {"undo_bytes", s.undo_bytes()},
          {"sync_chunks_applied", s.sync_chunks_applied()},
          {"replica_recovery", s.replica_recovery()},
          {"sync_pages_sent", s.sync_pages_sent()},
          {"sync_pages_skipped", s.sync_pages_skipped()},
          {"sync_bytes_saved", s.sync_bytes_saved()},
          {"last_migration", s.last_migration()},
          {"disk_bytes", s.disk_bytes()},
          {"disk_protected", s.disk_protected()},
          {"disk_detail", s.disk_detail()},
          {"disk_bytes_applied", s.disk_bytes_applied()},
          {"disk_last_seq", s.disk_last_seq()},
          {"epoch_policy", s.epoch_policy()},
          {"epoch_min_ms", s.epoch_min_ms()},
          {"epoch_max_ms", s.epoch_max_ms()},
          {"checkpoints_by_output", s.checkpoints_by_output()},
          {"checkpoints_by_timer", s.checkpoints_by_timer()},
          {"output_hold_p50_ms", s.output_hold_p50_ms()},
          {"output_hold_p99_ms", s.output_hold_p99_ms()},
          {"throttle",
           {{"enabled", s.throttle_enabled()},
            {"active", s.throttle_active()},
            {"duty", s.throttle_duty()},
            {"max_epoch_ms", s.throttle_max_epoch_ms()},
            {"last_epoch_ms", s.throttle_last_epoch_ms()},
            {"starts", s.throttle_starts()},
            {"stopped_s", s.throttle_stopped_s()}}},
          {"peer", s.peer()},
          {"detail", s.detail()},
          {"failover", to_json(s.failover())}};
}

void print_table(const ftd::v1::StatusReply& r) {
  for (const auto& s : r.vms()) {
    fmt::print("VM {} ({}, {} engine, {})  state: {}\n", s.name(), s.role(), s.engine(),
               human_bytes(static_cast<double>(s.memory_bytes())), ftd::state_name(s.state()));
    if (s.role() == "primary") {
      fmt::print("  epoch {}  acked {}  lag {} epochs / {:.0f} ms  sync {:.0f}%\n", s.epoch(),
                 s.acked_epoch(), s.lag_epochs(), s.lag_ms(), s.sync_progress() * 100);
      fmt::print("  checkpoints/s {:.1f}  pause last {:.2f} ms  p50 {:.2f} ms  p99 {:.2f} ms\n",
                 s.checkpoints_per_sec(), s.last_pause_us() / 1e3, s.pause_p50_us() / 1e3,
                 s.pause_p99_us() / 1e3);
      fmt::print("  wire {}/s  compression {:.1f}x  dirty pages last {}  apply {:.2f} ms\n",
                 human_bytes(s.bytes_per_sec()), s.compression_ratio(), s.dirty_pages_last(),
                 s.apply_us_last() / 1e3);
      fmt::print("  output held {}  released {}  hold p50 {:.2f} ms  p99 {:.2f} ms\n",
                 s.output_held(), s.output_released(), s.output_hold_p50_ms(),
                 s.output_hold_p99_ms());
      if (s.epoch_policy() == "output-driven")
        fmt::print("  epochs output-driven {}..{} ms  checkpoints by output {}  by timer {}\n",
                   s.epoch_min_ms(), s.epoch_max_ms(), s.checkpoints_by_output(),
                   s.checkpoints_by_timer());
      else
        fmt::print("  epochs fixed {} ms\n", s.epoch_max_ms());
      if (s.throttle_enabled())
        fmt::print(
            "  throttle {}  guest duty {:.0f}%  last epoch {} ms (max {})  engaged {}x  "
            "guest stopped {:.1f} s\n",
            s.throttle_active() ? "ACTIVE" : "idle", s.throttle_duty() * 100,
            s.throttle_last_epoch_ms(), s.throttle_max_epoch_ms(), s.throttle_starts(),
            s.throttle_stopped_s());
      if (s.sync_pages_sent() + s.sync_pages_skipped() > 0)
        fmt::print("  last sync: {} pages sent, {} equal on the replica (saved {})\n",
                   s.sync_pages_sent(), s.sync_pages_skipped(),
                   human_bytes(static_cast<double>(s.sync_bytes_saved())));
    } else {
      fmt::print("  replica epoch {}  checkpoints/s {:.1f}  apply last {:.2f} ms\n", s.epoch(),
                 s.checkpoints_per_sec(), s.apply_us_last() / 1e3);
      if (s.resyncing())
        fmt::print("  resync in progress: epoch {} kept for failover (undo log {})\n", s.epoch(),
                   human_bytes(static_cast<double>(s.undo_bytes())));
      if (!s.replica_recovery().empty()) fmt::print("  replica opened: {}\n", s.replica_recovery());
    }
    if (s.disk_bytes() > 0)
      fmt::print("  disk {}  {}  last write seq {}  {} {}{}\n",
                 human_bytes(static_cast<double>(s.disk_bytes())),
                 s.disk_protected() ? "protected" : "NOT protected", s.disk_last_seq(),
                 human_bytes(static_cast<double>(s.disk_bytes_applied())),
                 s.role() == "primary" ? "captured" : "applied",
                 s.disk_detail().empty() ? "" : "  (" + s.disk_detail() + ")");
    if (!s.peer().empty()) fmt::print("  peer {}\n", s.peer());
    if (!s.last_migration().empty()) fmt::print("  last migration: {}\n", s.last_migration());
    if (!s.detail().empty()) fmt::print("  {}\n", s.detail());
    if (s.has_failover()) {
      const auto& f = s.failover();
      if (!f.automatic()) {
        fmt::print("  failover: manual only ({})\n", f.reason());
        continue;
      }
      fmt::print("  failover: {} arbiter, term {}, {}  decision {} ({})\n", f.arbiter(), f.term(),
                 f.state(), f.decision(), f.reason());
      fmt::print("  heartbeat {}  ack {}  peer {}  received {} rejected {}\n",
                 age(f.heartbeat_age_ms()), age(f.ack_age_ms()),
                 f.peer_role().empty() ? "unknown" : f.peer_role(), f.heartbeats_received(),
                 f.heartbeats_rejected());
      fmt::print("  arbiter: {}\n", f.arbiter_evidence());
      if (!f.last_error().empty()) fmt::print("  failover error: {}\n", f.last_error());
    }
  }
}

int fail(const grpc::Status& st, const std::string& what) {
  std::cerr << "ftctl: " << what << " failed: " << st.error_message() << " (code "
            << static_cast<int>(st.error_code()) << ")\n";
  return st.error_code() == grpc::StatusCode::UNAVAILABLE ? 3 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ftctl: control a ftd daemon"};
  app.set_version_flag("--version", std::string("ftctl ") + ftd::kVersion);
  std::string control;
  std::string vm;
  bool json = false;
  double watch = 0;
  int timeout_s = 10;
  app.add_option("--control,-c", control, "daemon control address (unix:/path or host:port)")
      ->required()
      ->envname("FTD_CONTROL");
  app.add_option("--timeout", timeout_s, "seconds to wait for the daemon");
  ftd::TlsFiles tls;
  tls.add_to(app);
  std::string server_identity;
  app.add_option("--peer-identity", server_identity,
                 "TLS: name the daemon's certificate must carry (default: the host in --control)");
  app.require_subcommand(1);
  auto* status = app.add_subcommand("status", "show replication state and numbers");
  status->add_option("--vm", vm, "only this VM");
  status->add_flag("--json", json, "machine-readable output");
  status->add_option("--watch", watch, "refresh every N seconds");
  ftd::EventsCommand events_command;
  auto* events = app.add_subcommand(
      "events", "print recent state changes, then each new one as it happens (until Ctrl-C)");
  events->add_option("--vm", events_command.vm, "only this VM");
  events->add_flag("--json", events_command.json, "one JSON object per line");
  events->add_flag("--no-replay", events_command.no_replay,
                   "skip the recent events the daemon kept; only new ones");
  auto* plan = app.add_subcommand(
      "plan", "sample the protected guest and predict protection and migration costs");
  plan->add_option("--vm", vm, "VM name (may be omitted if the daemon has one)");
  ftd::planning::PlanQuestion question;
  double sample_s = 5, link_mbps = 0, qemu_max_mibs = 128;
  plan->add_option("--epoch-ms", question.epoch_ms, "epoch to predict for (default: the VM's)")
      ->check(CLI::Range(1.0, 60000.0));
  plan->add_option("--sample-s", sample_s, "seconds to sample the running guest")
      ->check(CLI::Range(0.5, 60.0));
  plan->add_option("--link-mbps", link_mbps,
                   "link to plan for, Mbit/s (default: the shipper's measured throughput)")
      ->check(CLI::Range(0.001, 1e7));
  plan->add_option("--downtime-limit-ms", question.precopy.downtime_limit_ms,
                   "QEMU's downtime-limit for the pre-copy prediction")
      ->check(CLI::Range(1.0, 600000.0));
  plan->add_option("--qemu-max-bandwidth-mibs", qemu_max_mibs,
                   "QEMU's max-bandwidth (MiB/s; 0: no cap) for the pre-copy prediction")
      ->check(CLI::Range(0.0, 1e7));
  plan->add_flag("--json", json, "machine-readable output");
  std::map<std::string, CLI::App*> actions;
  for (const char* name : {"protect", "unprotect", "failover", "migrate"}) {
    actions[name] = app.add_subcommand(name, std::string(name) + " a VM");
    actions[name]->add_option("--vm", vm, "VM name (may be omitted if the daemon has one)");
  }
  unsigned sync_timeout_s = 60;
  actions["migrate"]->add_option(
      "--sync-timeout", sync_timeout_s,
      "seconds to wait for the pair to be in sync before refusing (the VM stays here)");
  std::string protect_peer;
  actions["protect"]->add_option(
      "--peer", protect_peer,
      "secondary's replication address HOST:PORT (default: the daemon's --peer); "
      "protects a VM that failed over to this host");
  CLI11_PARSE(app, argc, argv);

  if (auto st = tls.validate(); !st) {
    std::cerr << "ftctl: " << st.error().message << "\n";
    return 2;
  }
  // The daemon serves its unix socket in plaintext (the socket's mode guards it).
  const bool use_tls = tls.enabled() && ftd::unix_socket_path(control).empty();
  auto security = ftd::channel_security(use_tls ? tls : ftd::TlsFiles{}, server_identity);
  if (!security) {
    std::cerr << "ftctl: " << security.error().message << "\n";
    return 2;
  }
  grpc::ChannelArguments channel_args;
  security->apply(channel_args);
  auto channel =
      grpc::CreateCustomChannel(control, security->credentials_or_insecure(), channel_args);
  auto stub = Control::NewStub(channel);
  auto context = [&] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
    return c;
  };

  if (events->parsed()) return ftd::run_events(*stub, events_command);
  if (plan->parsed()) {
    ftd::v1::PlanRequest req;
    req.set_vm_name(vm);
    req.set_sample_ms(static_cast<uint32_t>(sample_s * 1000));
    req.set_link_mbps(link_mbps);
    ftd::v1::PlanReply reply;
    auto c = context();  // the daemon samples for sample_s first
    c->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(sample_s * 1000)) +
                    std::chrono::seconds(timeout_s));
    auto st = stub->Plan(c.get(), req, &reply);
    if (!st.ok()) return fail(st, "plan");
    question.qemu_max_bandwidth_bytes_per_s = qemu_max_mibs * 1048576;
    const auto inputs = ftd::planning::from_proto(reply.inputs());
    if (json)
      std::cout << ftd::planning::plan_json(inputs, question).dump() << std::endl;
    else
      std::cout << ftd::planning::plan_table(inputs, question);
    return 0;
  }
  if (status->parsed()) {
    do {
      ftd::v1::StatusRequest req;
      req.set_vm_name(vm);
      ftd::v1::StatusReply reply;
      auto st = stub->Status(context().get(), req, &reply);
      if (!st.ok()) return fail(st, "status");
      if (json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& s : reply.vms()) arr.push_back(to_json(s));
        std::cout << arr.dump() << std::endl;
      } else {
        print_table(reply);
      }
      if (watch > 0) std::this_thread::sleep_for(std::chrono::duration<double>(watch));
    } while (watch > 0);
    return 0;
  }
  if (actions["failover"]->parsed()) {
    ftd::v1::FailoverRequest req;
    req.set_vm_name(vm);
    ftd::v1::FailoverReply reply;
    auto st = stub->Failover(context().get(), req, &reply);
    if (!st.ok()) return fail(st, "failover");
    if (json) {
      std::cout << nlohmann::json{{"epoch", reply.epoch()},
                                  {"activation_us", reply.activation_us()},
                                  {"message", reply.message()}}
                       .dump()
                << std::endl;
    } else {
      fmt::print("failed over at epoch {} in {:.1f} ms: {}\n", reply.epoch(),
                 reply.activation_us() / 1e3, reply.message());
    }
    return 0;
  }
  grpc::Status st;
  std::string message;
  if (actions["protect"]->parsed()) {
    ftd::v1::ProtectRequest req;
    req.set_vm_name(vm);
    req.set_peer(protect_peer);
    ftd::v1::ProtectReply reply;
    st = stub->Protect(context().get(), req, &reply);
    message = reply.message();
  } else if (actions["unprotect"]->parsed()) {
    ftd::v1::UnprotectRequest req;
    req.set_vm_name(vm);
    ftd::v1::UnprotectReply reply;
    st = stub->Unprotect(context().get(), req, &reply);
    message = reply.message();
  } else {
    ftd::v1::MigrateRequest req;
    req.set_vm_name(vm);
    req.set_sync_timeout_s(sync_timeout_s);
    ftd::v1::MigrateReply reply;
    auto c = context();  // waits for sync, then the handover: longer than other calls
    c->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(std::max<unsigned>(timeout_s, sync_timeout_s + 120)));
    st = stub->Migrate(c.get(), req, &reply);
    if (st.ok() && json) {
      std::cout << nlohmann::json{{"epoch", reply.epoch()},
                                  {"downtime_us", reply.downtime_us()},
                                  {"pause_us", reply.pause_us()},
                                  {"total_us", reply.total_us()},
                                  {"final_checkpoint_pages", reply.final_checkpoint_pages()},
                                  {"new_primary", reply.new_primary()},
                                  {"message", reply.message()}}
                       .dump()
                << std::endl;
      return 0;
    }
    message = reply.message();
  }
  if (!st.ok()) return fail(st, app.get_subcommands().front()->get_name());
  std::cout << message << std::endl;
  return 0;
}
