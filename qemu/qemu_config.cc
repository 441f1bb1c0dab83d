#include "qemu/qemu_config.h"

#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include <filesystem>
#include <ranges>

#include <nlohmann/json.hpp>

#include "qemu/qemu_opts.h"

namespace ftd {

Result<QemuDisk> parse_disk_spec(std::string_view spec) {
  QemuDisk disk;
  bool first = true;
  for (auto part : std::views::split(spec, ',')) {
    std::string_view item(part.begin(), part.end());
    if (first) {
      disk.path = std::string(item);
      first = false;
      continue;
    }
    if (item == "format=raw" || item == "format=qcow2") {
      disk.format = std::string(item.substr(7));
      continue;
    }
    return make_error(ErrorCode::kInvalidArgument,
                      "--disk '{}': unknown option '{}' (expected PATH[,format=raw|qcow2]; a "
                      "path cannot contain a comma)",
                      spec, item);
  }
  if (disk.path.empty())
    return make_error(ErrorCode::kInvalidArgument, "--disk '{}': no image path", spec);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(disk.path, ec) &&
      !std::filesystem::is_block_file(disk.path, ec))
    return make_error(ErrorCode::kNotFound, "--disk: image {} not found", disk.path);
  // QEMU would run a qcow2 file declared raw without a word (the guest sees
  // the qcow2 metadata as its disk) and fail a raw file declared qcow2 only
  // at start-up: check the format's magic here, where the error can say what to do.
  std::ifstream in(disk.path, std::ios::binary);
  char magic[4] = {};
  if (!in.read(magic, sizeof magic) && !in.eof())
    return make_error(ErrorCode::kIo, "--disk: cannot read image {}", disk.path);
  const bool qcow2 = in.gcount() == 4 && std::memcmp(magic, "QFI\xfb", 4) == 0;
  if (qcow2 && disk.format == "raw")
    return make_error(ErrorCode::kInvalidArgument,
                      "--disk {}: the image is qcow2; say so with '{},format=qcow2' (raw would "
                      "give the guest qcow2's metadata as its disk)",
                      disk.path, disk.path);
  if (!qcow2 && disk.format == "qcow2")
    return make_error(ErrorCode::kInvalidArgument,
                      "--disk {}: format=qcow2 but the image is not qcow2 (no QFI\\xfb magic); "
                      "drop format=qcow2 for a raw image",
                      disk.path);
  return disk;
}

std::vector<std::string> qemu_argv(const QemuConfig& c) {
  std::vector<std::string> a = {c.qemu_binary};
  // -nodefaults / -vga none: no VGA VRAM or other big private RAM blocks, which
  // would travel inside every device-state capture (x-ignore-shared skips only
  // shared RAM).
  // The operator's machine type and accelerator, with ftd's RAM backend.
  const std::string machine = c.spec && !c.spec->machine.empty()
                                  ? c.spec->machine + ",memory-backend=ram0"
                                  : std::string("pc,accel=tcg,memory-backend=ram0");
  a.insert(a.end(), {"-machine", machine, "-m", fmt::format("{}M", c.memory_mib), "-nodefaults",
                     "-nographic", "-vga", "none", "-no-user-config"});
  if (c.ram_file.empty()) {
    a.insert(a.end(), {"-object", fmt::format("memory-backend-memfd,id=ram0,size={}M,share=on",
                                              c.memory_mib)});
  } else {
    a.insert(a.end(), {"-object", fmt::format("memory-backend-file,id=ram0,size={}M,share=on,"
                                              "mem-path={}",
                                              c.memory_mib, qemu_opt_escape(c.ram_file))});
  }
  // Paths in key=value options get QEMU's ",," escape ("file:" takes the
  // rest of the -serial value as it is).
  a.insert(a.end(),
           {"-qmp", fmt::format("unix:{},server=on,wait=off", qemu_opt_escape(c.qmp_socket_path))});
  if (!c.spec || !c.spec->has_serial)
    a.insert(a.end(),
             {"-serial", c.serial_log_path.empty() ? std::string("null")
                                                   : fmt::format("file:{}", c.serial_log_path)});
  a.insert(a.end(), {"-monitor", "none"});
  if (!c.kernel.empty()) a.insert(a.end(), {"-kernel", c.kernel});
  if (!c.initrd.empty()) a.insert(a.end(), {"-initrd", c.initrd});
  if (!c.append.empty()) a.insert(a.end(), {"-append", c.append});
  if (c.nic) {
    // romfile= drops the iPXE option ROM: ~250 KB of private RAM that would
    // otherwise ride along in every device-state capture (we boot with -kernel).
    a.insert(a.end(),
             {"-netdev",
              fmt::format("stream,id=n0,server={},addr.type=unix,addr.path={}",
                          c.nic->qemu_listens ? "on" : "off", qemu_opt_escape(c.nic->socket_path)),
              "-device", fmt::format("virtio-net-pci,netdev=n0,mac={},romfile=", c.nic->mac)});
  }
  if (c.disk) {
    // JSON form: an image path may contain commas, which the key=value
    // syntax would split.
    nlohmann::json file = {{"driver", "file"}, {"filename", c.disk->path}, {"discard", "unmap"}};
    nlohmann::json node = {{"driver", c.disk->format},
                           {"node-name", kDiskNodeName},
                           {"discard", "unmap"},
                           {"file", file}};
    a.insert(a.end(), {"-blockdev", node.dump(), "-device",
                       fmt::format("virtio-blk-pci,drive={},id={}", kDiskNodeName, kDiskDeviceId)});
  }
  if (c.spec) {
    const auto spec = c.spec->argv();
    a.insert(a.end(), spec.begin(), spec.end());
  }
  if (!c.pid_file.empty()) a.insert(a.end(), {"-pidfile", c.pid_file});
  if (c.incoming) a.insert(a.end(), {"-S", "-incoming", "defer"});
  a.insert(a.end(), c.extra_args.begin(), c.extra_args.end());
  return a;
}

}  // namespace ftd
