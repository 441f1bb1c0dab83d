// RAII network plumbing for tests and demos: named network namespaces
// (`ip netns add/del`), veth pairs, bridges. Everything is removed on
// destruction, including after a failed test. Names should come from
// unique_ifname() so parallel tests never collide.
#pragma once

#include <sched.h>

#include <concepts>
#include <functional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace ftd::net {

// "<tag><pid><random hex>", at most 15 characters (IFNAMSIZ - 1); `tag` <= 4 chars.
std::string unique_ifname(std::string_view tag);

// `ip [-n ns] <args...>`; an empty `ns` means the caller's namespace.
Result<std::string> run_ip(const std::string& ns, std::vector<std::string> args);

class NetNamespace {
 public:
  NetNamespace() = default;
  NetNamespace(NetNamespace&& o) noexcept;
  NetNamespace& operator=(NetNamespace&& o) noexcept;
  ~NetNamespace();

  // `ip netns add <name>` and brings its loopback up.
  static Result<NetNamespace> create(std::string name);

  const std::string& name() const { return name_; }
  // Runs `ip -n <name> args...`.
  Result<std::string> ip(std::vector<std::string> args) const {
    return run_ip(name_, std::move(args));
  }
  // Runs `fn` on a dedicated thread that has entered this namespace (setns only
  // affects the calling thread, so the caller's thread never changes namespace).
  // Sockets and taps created there stay in this namespace wherever they are used.
  template <typename F>
  auto run(F&& fn) const -> std::invoke_result_t<F>;

 private:
  Status enter_on_this_thread() const;
  std::string name_;
};

// A veth pair; end `b` optionally moved into namespace `b_ns`. Deleting one end
// deletes both.
class VethPair {
 public:
  VethPair() = default;
  VethPair(VethPair&& o) noexcept;
  VethPair& operator=(VethPair&& o) noexcept;
  ~VethPair();

  static Result<VethPair> create(std::string a_ns, std::string a, std::string b_ns, std::string b);
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }

 private:
  std::string a_ns_, a_, b_;
};

class Bridge {
 public:
  Bridge() = default;
  Bridge(Bridge&& o) noexcept;
  Bridge& operator=(Bridge&& o) noexcept;
  ~Bridge();

  static Result<Bridge> create(std::string ns, std::string name);
  const std::string& name() const { return name_; }

 private:
  std::string ns_, name_;
};

// `ip addr add <cidr> dev <dev>` + link up; addresses vanish with their device.
Status add_address(const std::string& ns, const std::string& dev, const std::string& cidr);
Status link_up(const std::string& ns, const std::string& dev);

template <typename F>
auto NetNamespace::run(F&& fn) const -> std::invoke_result_t<F> {
  using R = std::invoke_result_t<F>;
  static_assert(
      requires(R r) {
        r.has_value();
        r.error();
      },
      "fn must return ftd::Result<T> or ftd::Status");
  R result = make_error(ErrorCode::kInternal, "netns thread did not run");
  std::thread worker([&] {
    if (auto entered = enter_on_this_thread(); !entered) {
      result = std::unexpected(entered.error());
      return;
    }
    result = fn();
  });
  worker.join();
  return result;
}

}  // namespace ftd::net
