#include "libvirt/libvirt_domain.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <memory>

#include "libvirt/domain_xml.h"
#include "libvirt/libvirt_argv.h"

namespace ftd {
namespace {

struct ConnectClose {
  void operator()(virConnect* c) const { virConnectClose(c); }
};
struct DomainFree {
  void operator()(virDomain* d) const { virDomainFree(d); }
};
struct CharFree {
  void operator()(char* s) const { free(s); }  // libvirt allocates with malloc
};

Error libvirt_error(std::string_view what) {
  const char* msg = virGetLastErrorMessage();
  return Error{ErrorCode::kUnavailable, fmt::format("libvirt: {}: {}", what, msg ? msg : "?")};
}

// libvirt prints its errors to stderr by default; ftd reports them itself.
void quiet_errors(void*, virErrorPtr) {}

}  // namespace

Result<LibvirtVm> load_libvirt_domain(const std::string& uri, const std::string& name) {
  virSetErrorFunc(nullptr, quiet_errors);
  std::unique_ptr<virConnect, ConnectClose> conn(virConnectOpen(uri.c_str()));
  if (!conn) return std::unexpected(libvirt_error(fmt::format("connect to {}", uri)));
  std::unique_ptr<virDomain, DomainFree> dom(virDomainLookupByName(conn.get(), name.c_str()));
  if (!dom) return std::unexpected(libvirt_error(fmt::format("domain '{}' on {}", name, uri)));
  std::unique_ptr<char, CharFree> xml(virDomainGetXMLDesc(dom.get(), VIR_DOMAIN_XML_INACTIVE));
  if (!xml) return std::unexpected(libvirt_error(fmt::format("XML of domain '{}'", name)));
  FTD_ASSIGN_OR_RETURN(DomainForFtd prepared, prepare_domain_xml(xml.get()));
  std::unique_ptr<char, CharFree> native(
      virConnectDomainXMLToNative(conn.get(), "qemu-argv", prepared.xml.c_str(), 0));
  if (!native)
    return std::unexpected(libvirt_error(fmt::format("domain '{}' to a QEMU command line", name)));
  FTD_ASSIGN_OR_RETURN(auto args, spec_args_from_libvirt_argv(native.get()));
  return LibvirtVm{.spec_args = std::move(args), .mac = std::move(prepared.mac)};
}

}  // namespace ftd
