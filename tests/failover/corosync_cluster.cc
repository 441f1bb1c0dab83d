#include "tests/failover/corosync_cluster.h"

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <fmt/format.h>

namespace ftd::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr Host kHosts[] = {Host::kA, Host::kB, Host::kC};

Status write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  if (!f) return make_error(ErrorCode::kIo, "cannot write {}", path);
  return ok();
}

}  // namespace

const char* CorosyncCluster::name(Host h) {
  static constexpr const char* kNames[] = {"a", "b", "c"};
  return kNames[static_cast<int>(h)];
}

std::string CorosyncCluster::address(Host h) const { return host(h).address; }

std::string CorosyncCluster::host_path(Host h, const std::string& dir) const {
  return fmt::format("{}/{}/root{}", workdir_, name(h), dir);
}

std::vector<Host> CorosyncCluster::hosts_used() const {
  if (options_.qdevice) return {Host::kA, Host::kB, Host::kC};
  return {Host::kA, Host::kB};
}

// The holder: owns the host's mount and UTS namespaces, mounts private state
// dirs, installs the config, says ready, then just waits to be killed.
std::string CorosyncCluster::holder_script(Host h) const {
  const std::string dir = fmt::format("{}/{}", workdir_, name(h));
  std::string persistent;
  for (const std::string& d : options_.persistent_dirs) {
    persistent += fmt::format("mkdir -p {0} {1}; mount --bind {1} {0}\n", d, host_path(h, d));
  }
  return fmt::format(
      "set -e\n"
      "for d in /run /dev/shm /var/lib/corosync /etc/corosync; do\n"
      "  mkdir -p $d; mount -t tmpfs -o mode=0755 tmpfs $d\n"
      "done\n"
      "chmod 1777 /dev/shm\n"
      "{1}"
      "hostname {2}\n"
      "mkdir -p /run/corosync-qdevice /run/corosync-qnetd /var/log/corosync\n"
      "cp {0}/corosync.conf /etc/corosync/corosync.conf\n"
      "touch {0}/ready\n"
      "exec sleep 2147483647\n",
      dir, persistent, name(h));
}

std::string CorosyncCluster::corosync_conf() const {
  std::string device_timeouts;
  if (options_.qdevice_timeout_ms > 0) {
    device_timeouts += fmt::format("    timeout: {}\n", options_.qdevice_timeout_ms);
  }
  if (options_.qdevice_sync_timeout_ms > 0) {
    device_timeouts += fmt::format("    sync_timeout: {}\n", options_.qdevice_sync_timeout_ms);
  }
  // `two_node` implies wait_for_all: both nodes must have been seen once.
  std::string quorum = "  two_node: 1\n";
  if (options_.qdevice) {
    quorum = fmt::format(
        "  device {{\n"
        "    model: net\n"
        "    votes: 1\n"
        "{}"
        "    net {{\n"
        "      host: {}\n"
        "      algorithm: ffsplit\n"
        "      tls: off\n"
        "    }}\n"
        "  }}\n",
        device_timeouts, address(Host::kC));
  }
  // One key per line: corosync's parser wants `node {` alone on its line.
  return fmt::format(
      "totem {{\n"
      "  version: 2\n"
      "  cluster_name: ftdcs\n"
      "  transport: knet\n"
      "  token: {token}\n"
      "  crypto_cipher: none\n"
      "  crypto_hash: none\n"
      "}}\n"
      "nodelist {{\n"
      "  node {{\n"
      "    ring0_addr: {a}\n"
      "    name: a\n"
      "    nodeid: 1\n"
      "  }}\n"
      "  node {{\n"
      "    ring0_addr: {b}\n"
      "    name: b\n"
      "    nodeid: 2\n"
      "  }}\n"
      "}}\n"
      "quorum {{\n"
      "  provider: corosync_votequorum\n"
      "{quorum}"
      "}}\n"
      "system {{\n"
      "  sched_rr: {rr}\n"
      "}}\n"
      "logging {{\n"
      "  to_stderr: yes\n"
      "  to_syslog: no\n"
      "  to_logfile: no\n"
      "  timestamp: hires\n"
      "}}\n",
      fmt::arg("token", options_.token_ms), fmt::arg("a", address(Host::kA)),
      fmt::arg("b", address(Host::kB)), fmt::arg("quorum", quorum),
      fmt::arg("rr", options_.realtime ? "yes" : "no"));
}

Result<std::unique_ptr<CorosyncCluster>> CorosyncCluster::start(CorosyncClusterOptions options) {
  std::unique_ptr<CorosyncCluster> c(new CorosyncCluster(options));
  FTD_TRY(c->make_workdir());
  FTD_TRY(c->build());
  FTD_TRY(c->start_daemons());
  return c;
}

Result<std::unique_ptr<CorosyncCluster>> CorosyncCluster::start_in(CorosyncHosts hosts,
                                                                   CorosyncClusterOptions options) {
  std::unique_ptr<CorosyncCluster> c(new CorosyncCluster(options));
  FTD_TRY(c->make_workdir());
  for (Host h : kHosts) {
    const int i = static_cast<int>(h);
    c->host(h).netns = hosts.netns[i];
    c->host(h).address = hosts.address[i];
  }
  FTD_TRY(c->start_daemons());
  return c;
}

Status CorosyncCluster::make_workdir() {
  char tmpl[] = "/tmp/cs-cluster-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return errno_error("mkdtemp");
  workdir_ = tmpl;
  return ok();
}

Status CorosyncCluster::build() {
  // The bridge lives in its own namespace, so the subnet cannot meet anyone
  // else's addresses; 10.213.7.0/24 is unused on this machine anyway.
  const std::string subnet = "10.213.7.";
  const std::string tag = net::unique_ifname("cs-");
  FTD_ASSIGN_OR_RETURN(bridge_ns_, net::NetNamespace::create(tag + "-br"));
  FTD_ASSIGN_OR_RETURN(bridge_, net::Bridge::create(bridge_ns_.name(), "br0"));
  for (Host h : kHosts) {
    HostState& s = host(h);
    FTD_ASSIGN_OR_RETURN(s.ns, net::NetNamespace::create(fmt::format("{}-{}", tag, name(h))));
    const std::string port = fmt::format("p{}", name(h));
    FTD_ASSIGN_OR_RETURN(s.veth,
                         net::VethPair::create(s.ns.name(), "eth0", bridge_ns_.name(), port));
    FTD_TRY(net::run_ip(bridge_ns_.name(), {"link", "set", port, "master", "br0"}));
    FTD_TRY(net::link_up(bridge_ns_.name(), port));
    s.netns = s.ns.name();
    s.address = fmt::format("{}{}", subnet, static_cast<int>(h) + 1);
    FTD_TRY(net::add_address(s.netns, "eth0", s.address + "/24"));
  }
  return ok();
}

Status CorosyncCluster::start_daemons() {
  for (Host h : hosts_used()) FTD_TRY(start_host(h));
  for (Host h : {Host::kA, Host::kB}) FTD_TRY(spawn(h, "corosync", {"corosync", "-f"}));
  if (!options_.qdevice) return ok();
  FTD_TRY(spawn(Host::kC, "qnetd", {"corosync-qnetd", "-f", "-s", "off"}));
  // qdevice exits at once if corosync's IPC is not up yet, and corosync 3.1.7
  // can abort (votequorum.c `sender_node != NULL`) when a qdevice registers
  // while the two nodes are still joining: start it on a formed pair.
  for (Host h : {Host::kA, Host::kB}) FTD_TRY(wait_ipc(h, 20s));
  for (Host h : {Host::kA, Host::kB}) FTD_TRY(wait_quorate(h, 2, 2, 30s));
  for (Host h : {Host::kA, Host::kB}) {
    FTD_TRY(spawn(h, "qdevice", {"corosync-qdevice", "-f"}));
  }
  return ok();
}

Status CorosyncCluster::start_host(Host h) {
  HostState& s = host(h);
  const std::string dir = fmt::format("{}/{}", workdir_, name(h));
  fs::create_directories(dir);
  FTD_TRY(write_file(dir + "/corosync.conf", corosync_conf()));
  SpawnOptions o;
  for (const std::string& d : options_.persistent_dirs) fs::create_directories(host_path(h, d));
  o.argv = {"unshare", "-m", "-u", "--propagation", "private", "--", "sh", "-c", holder_script(h)};
  o.netns = s.netns;
  o.log_path = dir + "/holder.log";
  o.kill_with_parent = true;
  FTD_ASSIGN_OR_RETURN(s.holder, Subprocess::spawn(o));
  const auto deadline = Clock::now() + 10s;
  while (!fs::exists(dir + "/ready")) {
    if (!s.holder.running()) {
      return make_error(ErrorCode::kInternal, "host {} namespace holder exited (see {})", name(h),
                        o.log_path);
    }
    if (Clock::now() > deadline)
      return make_error(ErrorCode::kTimeout, "host {} not ready", name(h));
    std::this_thread::sleep_for(10ms);
  }
  return ok();
}

std::vector<std::string> CorosyncCluster::enter(Host h) const {
  // nsenter execs the command itself (no fork): the PID we get is the command's.
  return {"nsenter", "-t", std::to_string(host(h).holder.pid()), "-m", "-n", "-u", "--"};
}

Result<std::string> CorosyncCluster::spawn(Host h, const std::string& tag,
                                           std::vector<std::string> argv) {
  HostState& s = host(h);
  SpawnOptions o;
  o.argv = enter(h);
  o.argv.insert(o.argv.end(), argv.begin(), argv.end());
  o.log_path = fmt::format("{}/{}/{}.log", workdir_, name(h), tag);
  o.kill_with_parent = true;
  FTD_ASSIGN_OR_RETURN(Subprocess p, Subprocess::spawn(o));
  s.procs.push_back(Proc{tag, std::move(p)});
  return o.log_path;
}

Result<std::string> CorosyncCluster::run(Host h, std::vector<std::string> argv) {
  std::vector<std::string> full = enter(h);
  full.insert(full.end(), argv.begin(), argv.end());
  return run_command(full, 10s);
}

Status CorosyncCluster::kill(Host h, const std::string& tag) {
  for (Proc& p : host(h).procs) {
    if (p.tag == tag && p.process.pid() > 0) {
      p.process.kill(SIGKILL);
      (void)p.process.wait(5s);
      return ok();
    }
  }
  return make_error(ErrorCode::kNotFound, "no process {} on host {}", tag, name(h));
}

Status CorosyncCluster::wait_ipc(Host h, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto out = run(h, {"corosync-cmapctl", "-g", "totem.token"});
    if (out) return ok();
    if (Clock::now() > deadline) {
      return make_error(ErrorCode::kTimeout, "corosync on {} never answered: {}", name(h),
                        out.error().message);
    }
    std::this_thread::sleep_for(50ms);
  }
}

Status CorosyncCluster::wait_quorate(Host h, int votes, int nodes,
                                     std::chrono::milliseconds timeout) {
  static const std::regex kQuorate(R"(Quorate:\s+Yes)");
  const std::regex votes_re(fmt::format(R"(Total votes:\s+{}\b)", votes));
  const std::regex nodes_re(fmt::format(R"(Nodes:\s+{}\b)", nodes));
  const auto deadline = Clock::now() + timeout;
  std::string last;
  for (;;) {
    // quorumtool exits non-zero when not quorate; its output still tells why.
    auto out = run(h, {"corosync-quorumtool", "-s"});
    last = out ? *out : out.error().message;
    if (out && std::regex_search(last, kQuorate) && std::regex_search(last, votes_re) &&
        std::regex_search(last, nodes_re)) {
      return ok();
    }
    if (Clock::now() > deadline) {
      return make_error(ErrorCode::kTimeout, "host {} not quorate with {} votes/{} nodes: {}",
                        name(h), votes, nodes, last);
    }
    std::this_thread::sleep_for(100ms);
  }
}

// The cut is made on the bridge (a switch dropping A<->B frames), not in the
// hosts: an OUTPUT drop makes sendto() fail with EPERM on the host itself,
// which a real network partition never does.
Status CorosyncCluster::partition_ab() {
  if (bridge_ns_.name().empty())
    return make_error(ErrorCode::kFailedPrecondition, "partition_ab: not our network");
  const std::string rules = fmt::format(
      "table bridge cs_partition {{\n"
      "  chain cut {{\n"
      "    type filter hook forward priority 0;\n"
      "    ip saddr {0} ip daddr {1} drop\n"
      "    ip saddr {1} ip daddr {0} drop\n"
      "  }}\n"
      "}}\n",
      address(Host::kA), address(Host::kB));
  const std::string path = workdir_ + "/partition.nft";
  FTD_TRY(write_file(path, rules));
  FTD_TRY(run_command({"ip", "netns", "exec", bridge_ns_.name(), "nft", "-f", path}));
  return ok();
}

Status CorosyncCluster::heal_ab() {
  if (bridge_ns_.name().empty())
    return make_error(ErrorCode::kFailedPrecondition, "heal_ab: not our network");
  FTD_TRY(run_command({"ip", "netns", "exec", bridge_ns_.name(), "nft", "delete", "table", "bridge",
                       "cs_partition"}));
  return ok();
}

Status CorosyncCluster::kill_host(Host h) {
  HostState& s = host(h);
  for (Proc& p : s.procs) p.process.kill(SIGKILL);
  s.holder.kill(SIGKILL);
  for (Proc& p : s.procs) (void)p.process.wait(5s);
  (void)s.holder.wait(5s);
  // Helpers our daemons forked (corosync-qdevice's heuristics worker) are in
  // this private namespace too: kill them by PID as well.
  // In given namespaces other processes share the host: the owner powers it off.
  if (s.ns.name().empty()) return ok();
  if (auto pids = run_command({"ip", "netns", "pids", s.netns})) {
    std::istringstream in(*pids);
    for (pid_t pid; in >> pid;) ::kill(pid, SIGKILL);
  }
  FTD_TRY(s.ns.ip({"link", "set", "eth0", "down"}));
  return ok();
}

CorosyncCluster::~CorosyncCluster() {
  // Processes first (by PID, via Subprocess), then links and namespaces.
  for (HostState& s : hosts_) {
    s.procs.clear();
    s.holder = Subprocess();
  }
  for (HostState& s : hosts_) {
    s.veth = net::VethPair();
    s.ns = net::NetNamespace();
  }
  bridge_ = net::Bridge();
  bridge_ns_ = net::NetNamespace();
  if (!workdir_.empty() && ::getenv("FTD_KEEP_CLUSTER_LOGS") == nullptr) {
    std::error_code ec;
    fs::remove_all(workdir_, ec);
  }
}

}  // namespace ftd::test
