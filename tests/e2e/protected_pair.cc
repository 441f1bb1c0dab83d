#include "tests/e2e/protected_pair.h"

#include <signal.h>

#include <fstream>
#include <sstream>

#include "proto/status_mapping.h"
#include "tests/guest/guest_testing.h"

namespace ftd::testing {
namespace {

using namespace std::chrono_literals;

// Each host has its own port space, so fixed ports never collide.
constexpr int kReplicationPort = 7400;
constexpr int kHeartbeatPort = 7401;
constexpr int kWitnessPort = 7402;

std::string hex_key(char fill) { return std::string(64, fill); }

Status write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return make_error(ErrorCode::kIo, "cannot write {}", path);
  return ok();
}

std::string endpoint(HostId h, int port) { return fmt::format("{}:{}", HostLan::address(h), port); }

}  // namespace

Result<std::unique_ptr<ProtectedPair>> ProtectedPair::start(PairOptions options) {
  std::unique_ptr<ProtectedPair> p(new ProtectedPair());
  p->options_ = std::move(options);
  if (auto st = p->start_all(); !st) return std::unexpected(st.error().with_context(p->logs()));
  return p;
}

ProtectedPair::~ProtectedPair() {
  // QEMUs launched since start (e.g. a standby activated) die with the rest.
  for (auto* d : {primary_ ? &*primary_ : nullptr, secondary_ ? &*secondary_ : nullptr})
    if (d && d->process().running()) reaper_.adopt_children_of(d->process().pid());
  for (auto& d : returned_)
    if (d.process().running()) reaper_.adopt_children_of(d.process().pid());
}

std::vector<std::string> ProtectedPair::daemon_args(bool primary) const {
  return primary ? daemon_args(HostId::kPrimary, true, primary_run(),
                               options_.migratable ? (replica_.path() / "pri").string() : "")
                 : daemon_args(HostId::kSecondary, false, secondary_run(), replica_dir());
}

std::vector<std::string> ProtectedPair::daemon_args(HostId self, bool primary,
                                                    const std::string& run_dir,
                                                    const std::string& replica_dir) const {
  const HostId peer = self == HostId::kPrimary ? HostId::kSecondary : HostId::kPrimary;
  auto guest = guest_dir();
  std::vector<std::string> a{
      "--vm", "vm0", "--engine", "qmp", "--memory-mib", std::to_string(options_.memory_mib),
      "--kernel", (*guest / "vmlinuz").string(), "--initrd", (*guest / "initrd.img").string(),
      "--append",
      fmt::format("console=ttyS0 quiet ftd.ip={} ftd.tick=1{}{}{}", kGuestCidr,
                  options_.disk_mib > 0 && options_.disk_ext4 ? " ftd.disklog=1" : "",
                  options_.append_extra.empty() ? "" : " ", options_.append_extra),
      "--mac", kGuestMac, "--bridge", lan_->vm_bridge(self), "--tap",
      self == HostId::kPrimary ? lan_->primary_tap() : lan_->secondary_tap(), "--run-dir", run_dir,
      "--heartbeat-link",
      fmt::format("{}={}", endpoint(self, kHeartbeatPort), endpoint(peer, kHeartbeatPort)),
      "--heartbeat-key", path("heartbeat.key"), "--arbiter", options_.arbiter,
      // Replication runs between the namespaces' 10.77.0.x addresses; these
      // tests are about failover, tests/security/ covers TLS.
      "--insecure"};
  if (options_.arbiter == "witness") {
    const bool pri = self == HostId::kPrimary;
    a.insert(a.end(),
             {"--witness", endpoint(HostId::kArbiter, kWitnessPort), "--witness-holder",
              pri ? "vm0/pri" : "vm0/sec", "--witness-key", path(pri ? "pri.key" : "sec.key")});
  }
  if (options_.arbiter == "corosync") {
    a.insert(a.end(), {"--corosync-peer-nodeid",
                       std::to_string(test::CorosyncCluster::nodeid(
                           self == HostId::kPrimary ? test::Host::kB : test::Host::kA)),
                       "--corosync-settle-ms", std::to_string(options_.corosync_settle_ms)});
  }
  if (options_.disk_mib > 0) {
    if (primary)
      a.insert(a.end(), {"--disk", options_.disk_format == "raw"
                                       ? disk_image()
                                       : disk_image() + ",format=" + options_.disk_format});
    else
      a.insert(a.end(), {"--disk-mib", std::to_string(options_.disk_mib)});
  }
  if (primary) {
    a.insert(a.end(), {"--role", "primary", "--peer", endpoint(peer, kReplicationPort),
                       "--epoch-ms", std::to_string(options_.epoch_ms)});
    if (!replica_dir.empty())
      a.insert(a.end(),
               {"--listen", endpoint(self, kReplicationPort), "--replica-dir", replica_dir});
  } else {
    // --peer: where `ftctl protect` protects to once this replica failed over.
    a.insert(a.end(), {"--role", "secondary", "--listen", endpoint(self, kReplicationPort),
                       "--peer", endpoint(peer, kReplicationPort), "--replica-dir", replica_dir,
                       "--epoch-ms", std::to_string(options_.epoch_ms)});
    if (options_.fence_primary)
      a.insert(a.end(),
               {"--fence-command", std::string(FTD_SOURCE_DIR) + "/deploy/fence/kill-netns-host.sh",
                "--fence-peer", lan_->ns(HostId::kPrimary), "--fence-timeout-ms", "5000"});
  }
  a.insert(a.end(), options_.extra_args.begin(), options_.extra_args.end());
  const auto& own = primary ? options_.primary_extra_args : options_.secondary_extra_args;
  a.insert(a.end(), own.begin(), own.end());
  return a;
}

Status ProtectedPair::start_all() {
  FTD_TRY(guest_dir());
  FTD_ASSIGN_OR_RETURN(HostLan lan, HostLan::create());
  lan_.emplace(std::move(lan));
  std::filesystem::create_directories(primary_run());
  std::filesystem::create_directories(secondary_run());
  std::filesystem::create_directories(path("witness-state"));
  FTD_TRY(write_text(path("heartbeat.key"), hex_key('7') + "\n"));
  FTD_TRY(write_text(path("pri.key"), hex_key('a') + "\n"));
  FTD_TRY(write_text(path("sec.key"), hex_key('b') + "\n"));
  FTD_TRY(write_text(path("witness.keys"),
                     fmt::format("vm0/pri {}\nvm0/sec {}\n", hex_key('a'), hex_key('b'))));
  if (options_.arbiter == "witness") FTD_TRY(restart_witness());
  if (options_.arbiter == "corosync") FTD_TRY(start_corosync());
  if (options_.disk_mib > 0) {
    FTD_TRY(run_command({"truncate", "-s", fmt::format("{}M", options_.disk_mib), disk_image()}));
    if (options_.disk_ext4) FTD_TRY(run_command({"mkfs.ext4", "-q", "-F", disk_image()}));
    if (options_.disk_format != "raw") {
      const std::string raw = path("disk.raw");
      std::filesystem::rename(disk_image(), raw);
      FTD_TRY(run_command(
          {"qemu-img", "convert", "-f", "raw", "-O", options_.disk_format, raw, disk_image()}));
      std::filesystem::remove(raw);
    }
  }

  FTD_ASSIGN_OR_RETURN(Daemon sec, start_daemon(false));
  secondary_.emplace(std::move(sec));
  reaper_.adopt_children_of(secondary_->process().pid());
  FTD_ASSIGN_OR_RETURN(Daemon pri, start_daemon(true));
  primary_.emplace(std::move(pri));
  reaper_.adopt_children_of(primary_->process().pid());
  if (!options_.wait_protected) return ok();

  const auto t0 = std::chrono::steady_clock::now();
  std::string last;
  const bool protected_ = wait_until(
      [&] {
        auto s = primary_->status();
        if (s) last = std::string(state_name(s->state())) + " " + s->detail();
        return s && s->state() == v1::VM_STATE_PROTECTED;
      },
      240s);
  if (!protected_)
    return make_error(ErrorCode::kTimeout, "primary never protected; last: {}", last);
  sync_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  FTD_TRY(wait_for_line(primary_run() + "/serial.log", "FTD-GUEST-READY", 180s));
  reaper_.adopt_children_of(primary_->process().pid());
  reaper_.adopt_children_of(secondary_->process().pid());
  return ok();
}

// pri = corosync node A (nodeid 1), sec = B (2), arb = the qnetd host C.
Status ProtectedPair::start_corosync() {
  test::CorosyncHosts hosts;
  for (HostId h : {HostId::kPrimary, HostId::kSecondary, HostId::kArbiter}) {
    hosts.netns[static_cast<size_t>(h)] = lan_->ns(h);
    hosts.address[static_cast<size_t>(h)] = HostLan::address(h);
  }
  FTD_ASSIGN_OR_RETURN(corosync_, test::CorosyncCluster::start_in(hosts, options_.corosync));
  // Both nodes plus the qdevice vote: ftd must not start on a half-formed cluster.
  for (test::Host h : {test::Host::kA, test::Host::kB})
    FTD_TRY(corosync_->wait_quorate(h, 3, 2, 60s));
  // The secondary's /dev/shm is its host's private tmpfs.
  FTD_TRY(corosync_->run(test::Host::kB, {"mkdir", "-p", replica_dir()}));
  return ok();
}

std::string ProtectedPair::replica_disk() const { return replica_dir() + "/vm0.disk"; }

std::string ProtectedPair::replica_dir() const {
  return corosync_ ? "/dev/shm/ftd-replica" : replica_.path().string();
}

// With corosync, ftd runs in its host's corosync mount namespace (libqb IPC
// lives in that host's private /dev/shm and /run): nsenter, not just the netns.
Result<Daemon> ProtectedPair::start_daemon(bool primary) {
  const HostId h = primary ? HostId::kPrimary : HostId::kSecondary;
  const std::string name = primary ? "primary" : "secondary";
  if (!corosync_)
    return Daemon::start(daemon_args(primary), "unix:" + path(name + ".ctl"), path(name + ".log"),
                         lan_->ns(h));
  return Daemon::start(daemon_args(primary), "unix:" + path(name + ".ctl"), path(name + ".log"), "",
                       corosync_->enter(primary ? test::Host::kA : test::Host::kB));
}

Result<Daemon*> ProtectedPair::return_as_secondary(HostId h) {
  if (corosync_)
    return make_error(ErrorCode::kUnimplemented, "return_as_secondary: not with corosync");
  FTD_TRY(lan_->power_on(h));
  // The first return of a host keeps the plain name (logs() lists it).
  std::string name = fmt::format("{}-returned", HostLan::role(h));
  if (std::filesystem::exists(path(name + "-run"))) name += "-" + std::to_string(returned_.size());
  const std::string run = path(name + "-run");
  // A host that was the secondary comes back with its disk: the old replica
  // (stale now) is still in its replica directory.
  const std::string replica =
      h == HostId::kSecondary ? replica_dir() : (replica_.path() / name).string();
  std::filesystem::create_directories(run);
  std::filesystem::create_directories(replica);
  FTD_ASSIGN_OR_RETURN(
      Daemon d, Daemon::start(daemon_args(h, false, run, replica), "unix:" + path(name + ".ctl"),
                              path(name + ".log"), lan_->ns(h)));
  returned_.push_back(std::move(d));
  returned_log_ = path(name + ".log");
  returned_replica_dir_ = replica;
  reaper_.adopt_children_of(returned_.back().process().pid());
  return &returned_.back();
}

Status ProtectedPair::restart_witness() {
  if (witness_ && witness_->running()) return ok();
  FTD_ASSIGN_OR_RETURN(
      Subprocess w,
      Subprocess::spawn({.argv = {built_binary("witness/ftd-witness"), "--listen",
                                  endpoint(HostId::kArbiter, kWitnessPort), "--state-dir",
                                  path("witness-state"), "--keys", path("witness.keys"),
                                  "--lease-ms", std::to_string(options_.lease_ms)},
                         .log_path = path("witness.log"),
                         .netns = lan_->ns(HostId::kArbiter)}));
  witness_.emplace(std::move(w));
  FTD_TRY(wait_for_line(path("witness.log"), "witness_started", 30s));
  return ok();
}

Status ProtectedPair::kill_witness() {
  if (!witness_) return make_error(ErrorCode::kFailedPrecondition, "no witness");
  witness_->kill(SIGKILL);
  FTD_TRY(witness_->wait(5s));
  return ok();
}

Status ProtectedPair::kill_daemon(Daemon& d) {
  reaper_.adopt_children_of(d.process().pid());
  d.process().kill(SIGKILL);
  FTD_TRY(d.process().wait(5s));
  return ok();
}

Status ProtectedPair::kill_primary_daemon() { return kill_daemon(*primary_); }
Status ProtectedPair::kill_secondary_daemon() { return kill_daemon(*secondary_); }

Result<Daemon*> ProtectedPair::restart_daemon(std::optional<Daemon>& slot, HostId h,
                                              std::vector<std::string> args,
                                              const std::vector<std::string>& extra) {
  if (corosync_)
    return make_error(ErrorCode::kUnimplemented, "restart a daemon: not with corosync");
  args.insert(args.end(), extra.begin(), extra.end());
  const std::string name = h == HostId::kPrimary ? "primary" : "secondary";
  slot.reset();
  FTD_ASSIGN_OR_RETURN(Daemon d, Daemon::start(args, "unix:" + path(name + ".ctl"),
                                               path(name + ".log"), lan_->ns(h)));
  slot.emplace(std::move(d));
  return &*slot;
}

Result<Daemon*> ProtectedPair::restart_primary_daemon(const std::vector<std::string>& extra) {
  return restart_daemon(primary_, HostId::kPrimary, daemon_args(true), extra);
}

Result<Daemon*> ProtectedPair::restart_secondary_as_primary(const std::vector<std::string>& extra) {
  return restart_daemon(secondary_, HostId::kSecondary,
                        daemon_args(HostId::kSecondary, true, secondary_run(), ""), extra);
}

Result<Daemon*> ProtectedPair::restart_secondary_daemon(
    const std::vector<std::string>& secondary_extra_args) {
  if (corosync_)
    return make_error(ErrorCode::kUnimplemented, "restart_secondary_daemon: not with corosync");
  reaper_.adopt_children_of(secondary_->process().pid());
  secondary_->process().kill(SIGTERM);
  FTD_TRY(secondary_->process().wait(30s));
  secondary_.reset();
  options_.secondary_extra_args = secondary_extra_args;
  FTD_ASSIGN_OR_RETURN(Daemon d, start_daemon(false));
  secondary_.emplace(std::move(d));
  reaper_.adopt_children_of(secondary_->process().pid());
  return &*secondary_;
}

std::string ProtectedPair::tail(const std::string& name, size_t max) const {
  std::ifstream in(path(name));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max ? "..." + s.substr(s.size() - max) : s;
}

std::string ProtectedPair::logs() const {
  std::string out;
  for (const char* f :
       {"primary.log", "secondary.log", "pri-returned.log", "sec-returned.log", "witness.log"})
    out += fmt::format("\n----- {} -----\n{}", f, tail(f));
  return out;
}

Status ProtectedPair::copy_logs(const std::string& dir) const {
  namespace fs = std::filesystem;
  // Logs are small; anything bigger is not a log (a guest RAM file would be).
  constexpr uintmax_t kMaxFileBytes = 64u << 20;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(work_.path(), ec), end; !ec && it != end;
       it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->file_size(ec) > kMaxFileBytes) continue;
    const fs::path to = fs::path(dir) / fs::relative(it->path(), work_.path());
    fs::create_directories(to.parent_path(), ec);
    fs::copy_file(it->path(), to, fs::copy_options::overwrite_existing, ec);
    if (ec) break;
  }
  if (ec) return make_error(ErrorCode::kIo, "copying the pair's logs to {}: {}", dir, ec.message());
  return ok();
}

}  // namespace ftd::testing
