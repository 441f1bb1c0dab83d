#include "tests/e2e/pacemaker_cluster.h"

#include <filesystem>
#include <regex>
#include <thread>

#include <fmt/format.h>

#include "common/file_util.h"

namespace ftd::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kPacemakerLib = "/var/lib/pacemaker";
constexpr const char* kPacemakerLog = "/var/log/pacemaker";

// Pacemaker's daemons run as hacluster and refuse state directories they do
// not own (what Debian's package sets up in the real root).
constexpr const char* kPrepareState =
    "set -e\n"
    "for d in cib pengine blackbox cores; do\n"
    "  mkdir -p /var/lib/pacemaker/$d; chmod 0750 /var/lib/pacemaker/$d\n"
    "done\n"
    "chown -R hacluster:haclient /var/lib/pacemaker /var/log/pacemaker\n"
    "mkdir -p /run/crm; chown hacluster:haclient /run/crm\n";

}  // namespace

Result<std::unique_ptr<PacemakerCluster>> PacemakerCluster::start(const HostLan& lan) {
  std::unique_ptr<PacemakerCluster> c(new PacemakerCluster());
  test::CorosyncHosts hosts;
  for (Node n : {Node::kA, Node::kB}) {
    hosts.netns[static_cast<int>(n)] = lan.ns(host(n));
    hosts.address[static_cast<int>(n)] = HostLan::address(host(n));
  }
  test::CorosyncClusterOptions options{
      .qdevice = false,
      .persistent_dirs = {kPacemakerLib, kPacemakerLog, "/usr/lib/ocf/resource.d", "/etc/ftd",
                          "/var/log/ftd"}};
  FTD_ASSIGN_OR_RETURN(c->corosync_, test::CorosyncCluster::start_in(hosts, options));
  for (Node n : {Node::kA, Node::kB}) FTD_TRY(c->start_node(n));
  return c;
}

Status PacemakerCluster::start_node(Node n) {
  FTD_TRY(corosync_->wait_ipc(n, 30s));
  FTD_TRY(corosync_->run(n, {"sh", "-c", kPrepareState}));
  // pacemakerd -f stays in the foreground: its PID is ours to kill.
  FTD_TRY(corosync_->spawn(
      n, "pacemakerd",
      {"env", fmt::format("PCMK_logfile={}/pacemaker.log", kPacemakerLog), "pacemakerd", "-f"}));
  return ok();
}

std::string PacemakerCluster::node_path(Node n, const std::string& dir) const {
  return corosync_->host_path(n, dir);
}

Status PacemakerCluster::install_agent() const {
  for (Node n : {Node::kA, Node::kB}) {
    const fs::path dir = fs::path(node_path(n, "/usr/lib/ocf/resource.d")) / "ftd";
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (!ec) {
      fs::copy_file(fs::path(FTD_SOURCE_DIR) / "deploy/ocf/ftd", dir / "ftd",
                    fs::copy_options::overwrite_existing, ec);
    }
    if (ec) return make_error(ErrorCode::kIo, "install agent on {}: {}", name(n), ec.message());
  }
  return ok();
}

Result<std::string> PacemakerCluster::run(Node n, std::vector<std::string> argv) {
  return corosync_->run(n, std::move(argv));
}

std::string PacemakerCluster::status(Node n) {
  auto out = run(n, {"crm_mon", "-1", "-A"});
  return out ? *out : out.error().to_string();
}

Status PacemakerCluster::wait_online(Node n, std::chrono::seconds timeout) {
  static const std::regex kOnline(R"(Online: \[ a b \])");
  static const std::regex kDc(R"(Current DC: [ab] )");
  const auto deadline = Clock::now() + timeout;
  std::string last;
  for (;;) {
    last = status(n);
    if (std::regex_search(last, kOnline) && std::regex_search(last, kDc)) return ok();
    if (Clock::now() > deadline) {
      return make_error(ErrorCode::kTimeout, "pacemaker on {} not online after {} s:\n{}", name(n),
                        timeout.count(), last);
    }
    std::this_thread::sleep_for(500ms);
  }
}

std::string PacemakerCluster::agent_log(Node n, size_t max) const {
  auto raw = read_file(node_path(n, kPacemakerLog) + "/pacemaker.log");
  if (!raw) return raw.error().to_string();
  std::string lines;
  std::string text(reinterpret_cast<const char*>(raw->data()), raw->size());
  // The agent's own lines and the controller's verdicts on its operations.
  static const std::regex kRelevant(R"(ftd\(|Result of |Node . state is now lost)");
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    if (std::regex_search(line, kRelevant)) lines += line + "\n";
    begin = end + 1;
  }
  return lines.size() > max ? lines.substr(lines.size() - max) : lines;
}

}  // namespace ftd::testing
