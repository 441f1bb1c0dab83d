// The OCF agent deploy/ocf/ftd driving a real two-node Pacemaker cluster
// (corosync + pacemakerd in HostLan's pri and sec hosts, PacemakerCluster):
// a promotable clone of ocf:ftd:ftd protects the real test guest. Pacemaker
// starts both instances as replicas, promotes one (cold boot: the guest
// boots there as an unprotected primary) and the post-promote notification
// protects it to the other node. A client streams TCP records to the guest;
// then the promoted host is powered off (links down, every process killed):
// Pacemaker on the survivor promotes its replica (ftctl failover) and the
// same TCP connection carries on with nothing lost, duplicated or reordered.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <fmt/format.h>

#include "common/file_util.h"
#include "tests/e2e/client_probes.h"
#include "tests/e2e/host_lan.h"
#include "tests/e2e/lan_addresses.h"
#include "tests/e2e/pacemaker_cluster.h"
#include "tests/e2e/protected_pair.h"
#include "tests/guest/guest_testing.h"
#include "tests/system/daemon_harness.h"

namespace ftd::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Node = PacemakerCluster::Node;
using Clock = std::chrono::steady_clock;

constexpr int kReplicationPort = 7400;
constexpr const char* kControl = "unix:/run/ftd/vm0.ocf.sock";  // the agent's default

// Pacemaker runs the agent with its own working directory: absolute paths.
std::string binary(const std::string& relative) {
  return fs::absolute(built_binary(relative)).string();
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The per-node ftd config the agent starts ftd with (--config): the same VM,
// this host's tap, bridge and replication address. No arbiter: Pacemaker decides.
std::string ftd_config(const HostLan& lan, Node n, const fs::path& guest) {
  const HostId h = PacemakerCluster::host(n);
  return fmt::format(
      "engine = \"qmp\"\n"
      "memory-mib = 128\n"
      "kernel = \"{}\"\n"
      "initrd = \"{}\"\n"
      "append = \"console=ttyS0 quiet ftd.ip={} ftd.tick=1\"\n"
      "mac = \"{}\"\n"
      "bridge = \"{}\"\n"
      "tap = \"{}\"\n"
      "listen = \"{}:{}\"\n"
      "replica-dir = \"/dev/shm/ftd\"\n"
      "epoch-ms = 50\n"
      // Replication between the namespaces' 10.77.0.x addresses in plaintext:
      // tests/security/ covers TLS.
      "insecure = true\n",
      (guest / "vmlinuz").string(), (guest / "initrd.img").string(), kGuestCidr, kGuestMac,
      lan.vm_bridge(h), h == HostId::kPrimary ? lan.primary_tap() : lan.secondary_tap(),
      HostLan::address(h), kReplicationPort);
}

// The promotable clone as an operator creates it (docs/pacemaker.md), with
// the build tree's binaries and short monitor intervals.
std::string clone_xml() {
  return fmt::format(
      R"(<clone id="vm0-clone">
  <meta_attributes id="vm0-clone-meta">
    <nvpair id="vm0-clone-promotable" name="promotable" value="true"/>
    <nvpair id="vm0-clone-notify" name="notify" value="true"/>
  </meta_attributes>
  <primitive id="vm0" class="ocf" provider="ftd" type="ftd">
    <instance_attributes id="vm0-ia">
      <nvpair id="vm0-ia-vm" name="vm" value="vm0"/>
      <nvpair id="vm0-ia-peers" name="peers" value="a={}:{} b={}:{}"/>
      <nvpair id="vm0-ia-cold" name="allow_cold_boot" value="true"/>
      <nvpair id="vm0-ia-ftd" name="ftd" value="{}"/>
      <nvpair id="vm0-ia-ftctl" name="ftctl" value="{}"/>
    </instance_attributes>
    <operations>
      <op id="vm0-start" name="start" interval="0s" timeout="60s"/>
      <op id="vm0-promote" name="promote" interval="0s" timeout="60s"/>
      <op id="vm0-mon-p" name="monitor" interval="3s" timeout="20s" role="Promoted"/>
      <op id="vm0-mon-u" name="monitor" interval="4s" timeout="20s" role="Unpromoted"/>
    </operations>
  </primitive>
</clone>)",
      HostLan::address(HostId::kPrimary), kReplicationPort, HostLan::address(HostId::kSecondary),
      kReplicationPort, binary("daemon/ftd"), binary("tools/ftctl/ftctl"));
}

Status install(const PacemakerCluster& cluster, const HostLan& lan, const fs::path& guest) {
  FTD_TRY(cluster.install_agent());
  for (Node n : {Node::kA, Node::kB}) {
    std::ofstream(cluster.node_path(n, "/etc/ftd") + "/vm0.conf") << ftd_config(lan, n, guest);
  }
  return ok();
}

// Which node crm_mon says is promoted ("Promoted: [ a ]"), if one is.
std::optional<Node> promoted_node(const std::string& crm_mon) {
  static const std::regex kPromoted(R"(Promoted: \[ ([ab]) \])");
  std::smatch m;
  if (!std::regex_search(crm_mon, m, kPromoted)) return std::nullopt;
  return m[1] == "a" ? Node::kA : Node::kB;
}

class PacemakerFailover : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && cluster_) {
      for (Node n : {Node::kA, Node::kB}) {
        std::printf("--- node %s: agent log\n%s\n", PacemakerCluster::name(n),
                    cluster_->agent_log(n).c_str());
        auto ftd_log = read_file(cluster_->node_path(n, "/var/log/ftd") + "/vm0.log");
        if (ftd_log) {
          std::string s(reinterpret_cast<const char*>(ftd_log->data()), ftd_log->size());
          std::printf("--- node %s: ftd log (tail)\n%s\n", PacemakerCluster::name(n),
                      s.substr(s.size() > 5000 ? s.size() - 5000 : 0).c_str());
        }
      }
    }
    // Processes first (the cluster by PID), then whatever they left in the
    // hosts (ftd, QEMU) with the namespaces.
    cluster_.reset();
    lan_.reset();
  }
  // `ftctl status --json` of the agent's daemon on node n ("" if none answers).
  std::string ftd_status(Node n) {
    auto out = cluster_->run(
        n, {binary("tools/ftctl/ftctl"), "-c", kControl, "--timeout", "5", "status", "--json"});
    return out ? *out : "";
  }

  std::optional<HostLan> lan_;
  std::unique_ptr<PacemakerCluster> cluster_;
};

TEST_F(PacemakerFailover, PromotedHostKilledSurvivorIsPromotedAndTcpStreamSurvives) {
  const auto t0 = Clock::now();
  auto guest = guest_dir();
  ASSERT_TRUE(guest) << guest.error().to_string();
  auto lan = HostLan::create();
  ASSERT_TRUE(lan) << lan.error().to_string();
  lan_.emplace(std::move(*lan));
  auto cluster = PacemakerCluster::start(*lan_);
  ASSERT_TRUE(cluster) << cluster.error().to_string();
  cluster_ = std::move(*cluster);
  ASSERT_TRUE(install(*cluster_, *lan_, *guest));

  auto online = cluster_->wait_online(Node::kA, 120s);
  ASSERT_TRUE(online) << online.error().to_string();
  const double formed_s = seconds_since(t0);
  std::printf("MEASURED cluster online (both nodes, DC elected) after %.1f s\n", formed_s);
  // No fence device: fencing here is the host kill itself (HostLan::kill_host
  // takes the links down and kills every process before the survivor notices).
  ASSERT_TRUE(cluster_->run(
      Node::kA, {"crm_attribute", "-t", "crm_config", "-n", "stonith-enabled", "-v", "false"}));
  auto created = cluster_->run(
      Node::kA, {"cibadmin", "--create", "-o", "resources", "--xml-text", clone_xml()});
  ASSERT_TRUE(created) << created.error().to_string();

  // Pacemaker promotes one replica (cold boot), whose post-promote notify
  // protects the guest to the other node.
  const auto t_clone = Clock::now();
  std::optional<Node> first;
  bool failed_action = false;
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string crm = cluster_->status(Node::kA);
        // A failed start/promote will not heal by waiting: stop at once.
        failed_action = crm.find("Failed Resource Actions") != std::string::npos;
        first = promoted_node(crm);
        if (failed_action) return true;
        if (!first) return false;
        const Node other = *first == Node::kA ? Node::kB : Node::kA;
        return ftd_status(*first).find(R"("role":"primary")") != std::string::npos &&
               ftd_status(*first).find(R"("state":"protected")") != std::string::npos &&
               ftd_status(other).find(R"("state":"protected")") != std::string::npos;
      },
      180s))
      << "no promoted, protected pair:\n"
      << cluster_->status(Node::kA);
  ASSERT_FALSE(failed_action) << cluster_->status(Node::kA);
  const Node survivor = *first == Node::kA ? Node::kB : Node::kA;
  std::printf("MEASURED promoted %s and protected to %s %.1f s after the clone was created\n",
              PacemakerCluster::name(*first), PacemakerCluster::name(survivor),
              seconds_since(t_clone));
  EXPECT_NE(ftd_status(survivor).find(R"("role":"secondary")"), std::string::npos);
  // The promoted node's post-promote notification protected to its peer, and
  // only to its peer (Pacemaker lists the node being promoted as unpromoted too).
  const std::string first_log = cluster_->agent_log(*first, 1 << 20);
  EXPECT_NE(first_log.find(fmt::format("protected vm0 to {}", PacemakerCluster::name(survivor))),
            std::string::npos)
      << first_log;
  EXPECT_EQ(first_log.find("protect vm0 to"), std::string::npos) << "a protect failed:\n"
                                                                 << first_log;

  // A client stream through the promoted node's guest.
  TempDir work;
  auto records = RecordStream::start(lan_->ns(HostId::kClient), kGuestIp,
                                     (work.path() / "record.log").string(),
                                     (work.path() / "record.json").string(), 50, 90);
  ASSERT_TRUE(records) << records.error().to_string();
  ASSERT_TRUE(wait_until([&] { return records->progress_received().value_or(0) > 0; }, 60s))
      << "no record reply from the guest";
  // The survivor's monitor has seen a live replica: it holds the top promotion score.
  ASSERT_TRUE(wait_until(
      [&] {
        return std::regex_search(cluster_->status(survivor),
                                 std::regex(fmt::format(R"(Node: {}:\s+\* master-vm0\s+: 100\b)",
                                                        PacemakerCluster::name(survivor))));
      },
      30s))
      << cluster_->status(survivor);
  std::this_thread::sleep_for(3s);

  // Power the promoted host off. Nothing else: Pacemaker must act.
  const auto t_kill = Clock::now();
  ASSERT_TRUE(lan_->kill_host(PacemakerCluster::host(*first)));
  ASSERT_TRUE(wait_until(
      [&] {
        return promoted_node(cluster_->status(survivor)) == survivor &&
               ftd_status(survivor).find(R"("state":"active")") != std::string::npos;
      },
      90s))
      << "survivor never promoted:\n"
      << cluster_->status(survivor);
  const double promoted_s = seconds_since(t_kill);
  std::printf("MEASURED host %s killed -> %s promoted (replica active) in %.1f s\n",
              PacemakerCluster::name(*first), PacemakerCluster::name(survivor), promoted_s);
  RecordProperty("kill_to_promoted_s", fmt::format("{:.1f}", promoted_s));
  const std::string crm = cluster_->status(survivor);
  EXPECT_NE(crm.find(fmt::format("OFFLINE: [ {} ]", PacemakerCluster::name(*first))),
            std::string::npos)
      << crm;
  EXPECT_NE(cluster_->agent_log(survivor).find("failed over at epoch"), std::string::npos);

  // The same TCP connection carries on from the survivor.
  const uint64_t before = records->progress_received().value_or(0);
  EXPECT_TRUE(
      wait_until([&] { return records->progress_received().value_or(0) > before + 50; }, 60s))
      << "record stream did not resume";
  auto verdict = records->stop(90s);
  ASSERT_TRUE(verdict) << verdict.error().to_string();
  const auto& [j, exit_code] = *verdict;
  std::printf("MEASURED records %s\n", record_summary(j, exit_code).dump().c_str());
  EXPECT_TRUE(j.value("ok", false)) << j.dump();
  EXPECT_EQ(exit_code, 0);
  EXPECT_EQ(j.value("lost", -1), 0);
  EXPECT_EQ(j.value("duplicated", -1), 0);
  EXPECT_EQ(j.value("reordered", -1), 0);
  std::printf("MEASURED whole test %.1f s\n", seconds_since(t0));
}

}  // namespace
}  // namespace ftd::testing
