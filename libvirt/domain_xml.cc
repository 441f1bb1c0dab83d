#include "libvirt/domain_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include <memory>
#include <vector>

namespace ftd {
namespace {

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
struct XPathCtxFree {
  void operator()(xmlXPathContext* c) const { xmlXPathFreeContext(c); }
};
struct XPathObjFree {
  void operator()(xmlXPathObject* o) const { xmlXPathFreeObject(o); }
};

std::vector<xmlNode*> select(xmlXPathContext* ctx, const char* path) {
  std::unique_ptr<xmlXPathObject, XPathObjFree> r(
      xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(path), ctx));
  std::vector<xmlNode*> nodes;
  if (r && r->nodesetval)
    for (int i = 0; i < r->nodesetval->nodeNr; ++i) nodes.push_back(r->nodesetval->nodeTab[i]);
  return nodes;
}

std::string attribute(xmlNode* n, const char* name) {
  xmlChar* v = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
  if (!v) return "";
  std::string s(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return s;
}

}  // namespace

Result<DomainForFtd> prepare_domain_xml(const std::string& xml) {
  std::unique_ptr<xmlDoc, DocFree> doc(
      xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "domain.xml", nullptr,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc) return make_error(ErrorCode::kInvalidArgument, "libvirt domain: XML does not parse");
  std::unique_ptr<xmlXPathContext, XPathCtxFree> ctx(xmlXPathNewContext(doc.get()));
  if (select(ctx.get(), "/domain").empty())
    return make_error(ErrorCode::kInvalidArgument, "libvirt domain: no <domain> element");
  if (auto h = select(ctx.get(), "/domain/devices/hostdev"); !h.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "libvirt domain: <hostdev> (device passthrough) refused: the device's state "
                      "lives in hardware and cannot be checkpointed or recreated on the standby");
  auto nics = select(ctx.get(), "/domain/devices/interface");
  if (nics.size() > 1)
    return make_error(ErrorCode::kInvalidArgument,
                      "libvirt domain: {} <interface> elements; ftd protects exactly one NIC (its "
                      "output-commit NIC): keep one",
                      nics.size());
  DomainForFtd out;
  for (xmlNode* nic : nics) {
    for (xmlNode* c = nic->children; c; c = c->next)
      if (c->type == XML_ELEMENT_NODE && xmlStrEqual(c->name, BAD_CAST "mac"))
        out.mac = attribute(c, "address");
    // ftd adds this NIC itself (virtio-net behind its output-commit proxy):
    // libvirt would translate it into a tap it opens itself.
    xmlUnlinkNode(nic);
    xmlFreeNode(nic);
  }
  xmlChar* buf = nullptr;
  int size = 0;
  xmlDocDumpMemory(doc.get(), &buf, &size);
  if (!buf) return make_error(ErrorCode::kInternal, "libvirt domain: XML cannot be written");
  out.xml.assign(reinterpret_cast<const char*>(buf), size);
  xmlFree(buf);
  return out;
}

}  // namespace ftd
