#include "libvirt/libvirt_argv.h"

#include <wordexp.h>

#include <memory>

#include "qemu/qemu_opts.h"

namespace ftd {
namespace {

struct WordexpFree {
  void operator()(wordexp_t* w) const { wordfree(w); }
};

// Shell words without running anything: libvirt quotes its line for a shell.
Result<std::vector<std::string>> shell_words(const std::string& line) {
  wordexp_t w{};
  const int rc = wordexp(line.c_str(), &w, WRDE_NOCMD | WRDE_UNDEF);
  std::unique_ptr<wordexp_t, WordexpFree> guard(rc == 0 ? &w : nullptr);
  if (rc != 0)
    return make_error(ErrorCode::kInvalidArgument,
                      "libvirt's QEMU command line cannot be split into words (wordexp error {})",
                      rc);
  return std::vector<std::string>(w.we_wordv, w.we_wordv + w.we_wordc);
}

bool env_assignment(const std::string& word) {
  const auto eq = word.find('=');
  return eq != std::string::npos && eq > 0 && word.find('/') > eq && word[0] != '-';
}

// libvirt's management objects, not the machine's.
Result<bool> libvirt_owned(const QemuOption& o, std::string& ram_backend_id) {
  if (o.name == "-S" || o.name == "-mon") return true;
  if (!o.value) return false;
  if (o.name == "-chardev") {
    FTD_ASSIGN_OR_RETURN(QemuProps p, parse_qemu_props(*o.value, "backend"));
    return p.contains("id") && p.at("id") == "charmonitor";
  }
  if (o.name == "-object") {
    FTD_ASSIGN_OR_RETURN(QemuProps p, parse_qemu_props(*o.value, "qom-type"));
    const std::string type = p.contains("qom-type") ? p.at("qom-type") : "";
    const std::string id = p.contains("id") ? p.at("id") : "";
    if (type == "secret" && id == "masterKey0") return true;
    if (type.starts_with("memory-backend") && id == ram_backend_id) {
      if ((p.contains("hugetlb") && qemu_bool(p.at("hugetlb"))) ||
          (p.contains("mem-path") && p.at("mem-path").find("huge") != std::string::npos))
        return make_error(ErrorCode::kInvalidArgument,
                          "libvirt domain: <memoryBacking><hugepages/> refused: ftd maps guest "
                          "RAM in 4 KiB pages (remove hugepages; memfd shared or default "
                          "backing are both fine, ftd replaces the backend)");
      return true;
    }
  }
  return false;
}

}  // namespace

Result<std::vector<std::string>> spec_args_from_libvirt_argv(const std::string& native) {
  FTD_ASSIGN_OR_RETURN(std::vector<std::string> words, shell_words(native));
  size_t i = 0;
  while (i < words.size() && env_assignment(words[i])) ++i;
  if (i >= words.size())
    return make_error(ErrorCode::kInvalidArgument, "libvirt's QEMU command line has no emulator");
  ++i;  // the emulator: ftd runs --qemu
  FTD_ASSIGN_OR_RETURN(
      std::vector<QemuOption> options,
      split_qemu_options({words.begin() + static_cast<ptrdiff_t>(i), words.end()}));
  // The machine names libvirt's RAM backend: ftd's replaces it.
  std::string ram_backend_id;
  for (QemuOption& o : options) {
    if (o.name != "-machine" || !o.value) continue;
    FTD_ASSIGN_OR_RETURN(QemuProps p, parse_qemu_props(*o.value, "type"));
    if (!p.contains("memory-backend")) continue;
    ram_backend_id = p.at("memory-backend");
    const std::string key = ",memory-backend=" + ram_backend_id;
    if (auto at = o.value->find(key); at != std::string::npos) o.value->erase(at, key.size());
  }
  std::vector<std::string> args;
  for (const QemuOption& o : options) {
    FTD_ASSIGN_OR_RETURN(bool drop, libvirt_owned(o, ram_backend_id));
    if (drop) continue;
    args.push_back(o.name);
    if (o.value) args.push_back(*o.value);
  }
  return args;
}

}  // namespace ftd
