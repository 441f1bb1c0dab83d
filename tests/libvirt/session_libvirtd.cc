#include "tests/libvirt/session_libvirtd.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <filesystem>
#include <memory>

#include "common/file_util.h"

namespace ftd::testing {

namespace fs = std::filesystem;

Result<std::unique_ptr<SessionLibvirtd>> SessionLibvirtd::start() {
  std::unique_ptr<SessionLibvirtd> owner(new SessionLibvirtd());
  SessionLibvirtd& d = *owner;
  const std::string base = d.dir_.path().string();
  for (const char* sub : {"home", "run", "config", "cache"})
    fs::create_directories(base + "/" + sub);
  // nobody owns its own tree; XDG_RUNTIME_DIR must be private to it.
  std::error_code ec;
  fs::permissions(d.dir_.path(), fs::perms::all, ec);
  for (const auto& e : fs::recursive_directory_iterator(d.dir_.path()))
    if (::chown(e.path().c_str(), 65534, 65534) != 0)
      return make_error(ErrorCode::kIo, "chown {} to nobody failed", e.path().string());
  fs::permissions(base + "/run", fs::perms::owner_all, ec);
  FTD_ASSIGN_OR_RETURN(
      d.daemon_,
      Subprocess::spawn(
          {.argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    "/usr/sbin/libvirtd", "--timeout", "0"},
           .env = {"HOME=" + base + "/home", "XDG_RUNTIME_DIR=" + base + "/run",
                   "XDG_CONFIG_HOME=" + base + "/config", "XDG_CACHE_HOME=" + base + "/cache"},
           .log_path = base + "/libvirtd.log"}));
  const std::string sock = base + "/run/libvirt/libvirt-sock";
  if (!wait_until([&] { return fs::exists(sock); }, std::chrono::seconds(20)))
    return make_error(ErrorCode::kTimeout, "libvirtd made no socket {}: {}", sock,
                      slurp(base + "/libvirtd.log"));
  return owner;
}

std::string SessionLibvirtd::uri() const {
  return "qemu+unix:///session?socket=" + dir_.path().string() + "/run/libvirt/libvirt-sock";
}

std::string SessionLibvirtd::log() const { return slurp(dir_.path() / "libvirtd.log"); }

Status SessionLibvirtd::define(const std::string& xml) const {
  std::unique_ptr<virConnect, decltype(&virConnectClose)> conn(virConnectOpen(uri().c_str()),
                                                               &virConnectClose);
  if (!conn) return make_error(ErrorCode::kUnavailable, "connect: {}", virGetLastErrorMessage());
  virDomainPtr dom = virDomainDefineXML(conn.get(), xml.c_str());
  if (!dom) return make_error(ErrorCode::kInvalidArgument, "define: {}", virGetLastErrorMessage());
  virDomainFree(dom);
  return ok();
}

}  // namespace ftd::testing
