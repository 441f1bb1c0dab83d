// ftd: the replication daemon. One process per host and role; it protects the
// VM named on its command line (or config file) and serves the control API.
#include <signal.h>

#include <CLI/CLI.hpp>

#include "common/crash_report.h"
#include "common/heap_reuse.h"
#include "common/log.h"
#include "common/service_notify.h"
#include "common/version.h"
#include "daemon/control_service.h"
#include "daemon/engine_options.h"
#include "daemon/targets.h"
#include "observability/event_journal.h"
#include "observability/metrics_options.h"
#include "proto/status_mapping.h"
#include "secondary/replication_service.h"
#include "security/address_policy.h"
#include "security/grpc_listen.h"
#include "security/tls_options.h"
#include "synthetic/message_log_gate.h"
#include "synthetic/synthetic_activator.h"
#include "synthetic/synthetic_engine.h"

namespace {

using namespace ftd;

struct Options {
  std::string role;
  std::string vm = "vm0";
  std::string control;    // control API listen address
  std::string listen;     // secondary: replication listen address
  std::string peer;       // primary: secondary's replication address (and protect's default)
  std::string advertise;  // this host's replication address as the peer reaches it
  std::string log_level = "info";
  bool start_protected = true;
  PipelineOptions pipeline;
  EngineOptions engine;
  FailoverOptions failover;
  TlsOptions tls;
  MetricsOptions metrics;
  std::string replica_dir = "/dev/shm/ftd";
};

// "role=secondary state=protected": what systemd shows as the unit's status.
std::string role_line(const v1::VmStatus& s) {
  return fmt::format("vm={} role={} state={}", s.name(), s.role(), state_name(s.state()));
}

// Blocks until SIGINT/SIGTERM. Signals are blocked in every thread (mask set
// before any thread starts) and taken here synchronously. Meanwhile, every
// change of role or state (failover, protect, fencing) goes to systemd as a
// STATUS= line; polled, because those changes happen inside ManagedVm.
int wait_for_signal(const sigset_t& set, const ManagedVm& vm) {
  std::string last = role_line(vm.status());
  notify_ready(last);
  const timespec poll{.tv_sec = 0, .tv_nsec = 250'000'000};
  while (true) {
    int sig = sigtimedwait(&set, nullptr, &poll);
    if (sig > 0) return sig;
    std::string now = role_line(vm.status());
    if (now == last) continue;
    spdlog::info("ftd.role_change from=\"{}\" to=\"{}\"", last, now);
    notify_status(now);
    last = std::move(now);
  }
}

// Refuses flag combinations that would leave an endpoint open to other
// hosts, before any engine (QEMU) is started.
Status check_security(const Options& o) {
  FTD_TRY(o.tls.validate());
  const bool tls = o.tls.enabled();
  if (o.role == "primary") FTD_TRY(check_plaintext_allowed("--peer", o.peer, tls, o.tls.insecure));
  if (!o.listen.empty())
    FTD_TRY(check_plaintext_allowed("--listen", o.listen, tls, o.tls.insecure));
  FTD_TRY(o.metrics.validate());
  return check_control_plaintext_allowed(o.control, tls, o.tls.insecure);
}

// Replication and control listen on separate servers: replication's
// keepalive pings would otherwise break idle operator/cluster-manager channels.
// Replication: TLS whenever configured. Control: TLS over TCP; a unix socket
// is guarded by its 0600 mode instead (ftctl on the host needs no cert).
std::unique_ptr<grpc::Server> start_server(const Options& o, grpc::Service* service,
                                           bool replication) {
  const std::string& address = replication ? o.listen : o.control;
  const bool tls = replication || unix_socket_path(address).empty();
  auto credentials = server_credentials(tls ? o.tls.files : TlsFiles{});
  if (!credentials) {
    spdlog::critical("listen_failed address={} error=\"{}\"", address,
                     credentials.error().to_string());
    return nullptr;
  }
  auto started =
      start_grpc_server({.address = address,
                         .credentials = *credentials,
                         .services = {service},
                         .configure = replication ? apply_replication_server_args
                                                  : std::function<void(grpc::ServerBuilder&)>()});
  if (!started) {
    spdlog::critical("listen_failed {} error=\"{}\"", replication ? "replication" : "control",
                     started.error().to_string());
    return nullptr;
  }
  spdlog::info("listening {} address={} tls={}", replication ? "replication" : "control", address,
               tls && o.tls.enabled());
  return std::move(started->server);
}

SecondaryVmConfig replica_config(const Options& o) {
  return {.vm_name = o.vm,
          .memory_bytes = o.engine.memory_mib << 20,
          .page_size = 4096,
          .disk_bytes = o.engine.disk_mib << 20,
          .vm_spec_digest = vm_spec_digest(o.engine),
          .replica_dir = o.replica_dir,
          .decode_threads = o.pipeline.decode_threads};
}

// The replication address the peer reaches this host at: --advertise, or
// --listen unless that is a wildcard address.
std::string advertised_address(const Options& o) {
  if (!o.advertise.empty()) return o.advertise;
  if (o.listen.starts_with("0.0.0.0:") || o.listen.starts_with("[::]:")) return "";
  return o.listen;
}

ManagedVmConfig managed_config(const Options& o) {
  ManagedVmConfig c{.vm_name = o.vm,
                    .peer = o.peer,
                    .tls = o.tls.files,
                    .peer_identity = o.tls.peer_identity,
                    .insecure = o.tls.insecure,
                    .pipeline = to_config(o.pipeline),
                    .vm_spec_digest = vm_spec_digest(o.engine),
                    .failover = o.failover};
  if (!o.listen.empty()) {
    c.advertise = advertised_address(o);
    c.replica = replica_config(o);
    c.make_activator = [engine = o.engine, vm = o.vm, dir = o.replica_dir] {
      return build_activator(engine, vm, dir);
    };
  }
  return c;
}

// Serves the control API (and, for a replica, replication; with
// --metrics-listen, /metrics and the status page) until a signal.
int serve(const Options& o, ManagedVm& vm, std::shared_ptr<EventJournal> events,
          const sigset_t& signals) {
  std::unique_ptr<grpc::Server> replication_server;
  std::unique_ptr<ReplicationService> replication;
  // Any role with --listen: a primary becomes a secondary by planned migration.
  if (!o.listen.empty()) {
    replication = std::make_unique<ReplicationService>([&vm] { return vm.secondary(); }, o.vm,
                                                       o.tls.peer_identity);
    replication_server = start_server(o, replication.get(), true);
    if (!replication_server) return 1;
  }
  ControlService control;
  VmTarget target(vm);
  control.add(o.vm, &target);
  control.set_events(events);
  auto control_server = start_server(o, &control, false);
  if (!control_server) return 1;
  // Declared after `control`: stopped (joined) before the targets it reads go.
  auto metrics = start_metrics_endpoint(
      o.metrics, {.status = [&control] { return control.snapshot(); }, .events = events});
  if (!metrics) {
    spdlog::critical("listen_failed metrics error=\"{}\"", metrics.error().to_string());
    return 1;
  }
  spdlog::info("ftd.start role={} vm={} control={} {} tls={}", o.role, o.vm, o.control,
               vm.secondary() ? "listen=" + o.listen + " replica=" + vm.secondary()->replica_path()
                              : "peer=" + o.peer + (o.listen.empty() ? "" : " listen=" + o.listen),
               o.tls.enabled() ? "peer=" + o.tls.peer_identity : "off");
  int sig = wait_for_signal(signals, vm);
  spdlog::info("ftd.stop signal={}", sig);
  control.end_streams();
  notify_stopping();
  control_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (replication_server)
    replication_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}

int run_primary(const Options& o, std::shared_ptr<EventJournal> events, const sigset_t& signals) {
  RunningGuest guest;
  auto built = build_primary_engine(o.engine, o.vm, guest.gates);
  if (!built) {
    spdlog::critical("engine.failed error=\"{}\"", built.error().to_string());
    return 1;
  }
  guest.engine = std::move(*built);
  auto vm = ManagedVm::as_primary(managed_config(o), std::move(guest), o.start_protected);
  if (!vm) {
    spdlog::critical("vm.failed error=\"{}\"", vm.error().to_string());
    return 1;
  }
  return serve(o, **vm, std::move(events), signals);
}

int run_secondary(const Options& o, std::shared_ptr<EventJournal> events, const sigset_t& signals) {
  auto activator = build_activator(o.engine, o.vm, o.replica_dir);
  if (!activator) {
    spdlog::critical("activator.failed error=\"{}\"", activator.error().to_string());
    return 1;
  }
  auto replica = SecondaryVm::open(replica_config(o), std::move(*activator));
  if (!replica) {
    spdlog::critical("replica.failed error=\"{}\"", replica.error().to_string());
    return 1;
  }
  auto vm = ManagedVm::as_secondary(managed_config(o), std::move(*replica));
  if (!vm) {
    spdlog::critical("failover.failed error=\"{}\"", vm.error().to_string());
    return 1;
  }
  return serve(o, **vm, std::move(events), signals);
}

}  // namespace

int main(int argc, char** argv) {
  install_crash_report(argv[0]);
  CLI::App app{"ftd: fault-tolerance replication daemon for QEMU/KVM virtual machines"};
  app.set_config("--config", "", "read options from this TOML/INI file");
  app.set_version_flag("--version", std::string("ftd ") + kVersion);
  Options o;
  app.add_option("--role", o.role, "primary or secondary")
      ->required()
      ->check(CLI::IsMember({"primary", "secondary"}));
  app.add_option("--vm", o.vm, "name of the protected VM");
  app.add_option("--control", o.control, "control API address (unix:/path or host:port)")
      ->required();
  app.add_option("--listen", o.listen,
                 "replication address to listen on (secondary; a primary with it can become "
                 "the secondary by planned migration)");
  app.add_option("--advertise", o.advertise,
                 "this host's replication address as the peer reaches it (default: --listen "
                 "unless it is a wildcard address)");
  app.add_option("--peer", o.peer, "primary: the secondary's replication address");
  app.add_option("--replica-dir", o.replica_dir, "secondary: where replica files live (tmpfs)");
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error");
  app.add_flag("--start-protected,!--no-start-protected", o.start_protected,
               "primary: begin replication at start-up (default) or wait for `ftctl protect`");
  add_pipeline_options(app, o.pipeline);
  add_engine_options(app, o.engine);
  o.failover.add_to(app);
  o.tls.add_to(app);
  o.metrics.add_to(app);
  CLI11_PARSE(app, argc, argv);

  // Blocked before the first thread starts (init_logging starts spdlog's
  // flusher): a thread with SIGTERM unblocked would take the signal and die by
  // its default action, skipping the orderly stop (seen as exit 143 in
  // tests/system/service_notify_test under load).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  // Recent state changes for the status page and `ftctl events`, taken from
  // the log lines that announce them (observability/event_journal.h).
  auto events = std::make_shared<EventJournal>();
  init_logging(o.role, o.log_level, {EventJournal::sink(events)});
  if (o.role == "primary" && o.peer.empty()) {
    spdlog::critical("--peer is required for the primary");
    return 2;
  }
  if (o.role == "secondary" && o.listen.empty()) {
    spdlog::critical("--listen is required for the secondary");
    return 2;
  }
  if (auto st = check_pipeline_options(o.pipeline); !st) {
    spdlog::critical("options.refused {}", st.error().message);
    return 2;
  }
  if (auto st = check_engine_options(o.engine, o.role); !st) {
    spdlog::critical("options.refused {}", st.error().message);
    return 2;
  }
  if (auto st = resolve_vm_spec(o.engine, app.count("--memory-mib") > 0); !st) {
    spdlog::critical("options.refused {}", st.error().message);
    return 2;
  }
  if (o.engine.spec)
    spdlog::info("vm_spec options={} memory_mib={} machine=\"{}\" digest={}",
                 o.engine.spec->options.size(), o.engine.memory_mib, o.engine.spec->machine,
                 o.engine.spec->digest());
  if (auto st = check_security(o); !st) {
    spdlog::critical("security.refused {}", st.error().message);
    return 2;
  }
  keep_freed_heap_memory();

  return o.role == "primary" ? run_primary(o, std::move(events), signals)
                             : run_secondary(o, std::move(events), signals);
}
