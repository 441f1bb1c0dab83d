#include "net/netns.h"

#include <fcntl.h>
#include <unistd.h>

#include <random>

#include "common/log.h"
#include "common/subprocess.h"

namespace ftd::net {

std::string unique_ifname(std::string_view tag) {
  std::random_device rd;
  std::string name = fmt::format("{}{}{:08x}", tag.substr(0, 4), ::getpid(), rd());
  return name.substr(0, 15);
}

Result<std::string> run_ip(const std::string& ns, std::vector<std::string> args) {
  std::vector<std::string> argv{"ip"};
  if (!ns.empty()) {
    argv.push_back("-n");
    argv.push_back(ns);
  }
  argv.insert(argv.end(), std::make_move_iterator(args.begin()),
              std::make_move_iterator(args.end()));
  return run_command(argv);
}

Status link_up(const std::string& ns, const std::string& dev) {
  FTD_TRY(run_ip(ns, {"link", "set", dev, "up"}));
  return ok();
}

Status add_address(const std::string& ns, const std::string& dev, const std::string& cidr) {
  FTD_TRY(run_ip(ns, {"addr", "add", cidr, "dev", dev}));
  return link_up(ns, dev);
}

// --- NetNamespace ---

NetNamespace::NetNamespace(NetNamespace&& o) noexcept : name_(std::exchange(o.name_, {})) {}

NetNamespace& NetNamespace::operator=(NetNamespace&& o) noexcept {
  if (this != &o) {
    NetNamespace old(std::move(*this));
    name_ = std::exchange(o.name_, {});
  }
  return *this;
}

NetNamespace::~NetNamespace() {
  if (name_.empty()) return;
  if (auto r = run_command({"ip", "netns", "del", name_}); !r) {
    spdlog::warn("netns.del name={} error={}", name_, r.error().to_string());
  }
}

Result<NetNamespace> NetNamespace::create(std::string name) {
  FTD_TRY(run_command({"ip", "netns", "add", name}));
  NetNamespace ns;
  ns.name_ = std::move(name);  // owned from here: removed even if the next step fails
  FTD_TRY(link_up(ns.name_, "lo"));
  return ns;
}

Status NetNamespace::enter_on_this_thread() const {
  std::string path = "/run/netns/" + name_;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open " + path);
  if (::setns(fd.get(), CLONE_NEWNET) != 0) return errno_error("setns " + path);
  return ok();
}

// --- VethPair ---

VethPair::VethPair(VethPair&& o) noexcept
    : a_ns_(std::exchange(o.a_ns_, {})), a_(std::exchange(o.a_, {})), b_(std::exchange(o.b_, {})) {}

VethPair& VethPair::operator=(VethPair&& o) noexcept {
  if (this != &o) {
    VethPair old(std::move(*this));
    a_ns_ = std::exchange(o.a_ns_, {});
    a_ = std::exchange(o.a_, {});
    b_ = std::exchange(o.b_, {});
  }
  return *this;
}

VethPair::~VethPair() {
  if (a_.empty()) return;
  // Already gone when its namespace was deleted first; that is fine.
  (void)run_ip(a_ns_, {"link", "del", a_});
}

Result<VethPair> VethPair::create(std::string a_ns, std::string a, std::string b_ns,
                                  std::string b) {
  std::vector<std::string> args{"link", "add", a, "type", "veth", "peer", "name", b};
  if (b_ns != a_ns) {
    if (b_ns.empty())
      return make_error(ErrorCode::kInvalidArgument, "peer namespace must be named");
    args.push_back("netns");
    args.push_back(b_ns);
  }
  FTD_TRY(run_ip(a_ns, args));
  VethPair pair;
  pair.a_ns_ = std::move(a_ns);
  pair.a_ = std::move(a);
  pair.b_ = std::move(b);
  return pair;
}

// --- Bridge ---

Bridge::Bridge(Bridge&& o) noexcept
    : ns_(std::exchange(o.ns_, {})), name_(std::exchange(o.name_, {})) {}

Bridge& Bridge::operator=(Bridge&& o) noexcept {
  if (this != &o) {
    Bridge old(std::move(*this));
    ns_ = std::exchange(o.ns_, {});
    name_ = std::exchange(o.name_, {});
  }
  return *this;
}

Bridge::~Bridge() {
  if (name_.empty()) return;
  (void)run_ip(ns_, {"link", "del", name_});
}

Result<Bridge> Bridge::create(std::string ns, std::string name) {
  FTD_TRY(run_ip(ns, {"link", "add", name, "type", "bridge"}));
  Bridge br;
  br.ns_ = std::move(ns);
  br.name_ = std::move(name);
  FTD_TRY(link_up(br.ns_, br.name_));
  return br;
}

}  // namespace ftd::net
