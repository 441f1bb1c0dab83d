#include "daemon/engine_options.h"

#include "daemon/qemu_wiring.h"
#include "libvirt/libvirt_domain.h"
#include "qemu/qemu_config.h"
#include "synthetic/message_log_gate.h"
#include "synthetic/synthetic_activator.h"
#include "synthetic/synthetic_engine.h"

namespace ftd {
namespace {

SyntheticEngine::Config synthetic_config(const EngineOptions& o) {
  return {.memory_bytes = o.memory_mib << 20,
          .dirty_pages_per_sec = o.dirty_rate,
          .locality = o.locality,
          .seed = o.seed,
          .bytes_per_write = o.bytes_per_write,
          .messages_per_sec = o.messages_per_sec,
          .disk_bytes = o.disk_mib << 20};
}

}  // namespace

void add_pipeline_options(CLI::App& app, PipelineOptions& o) {
  app.add_option("--epoch-ms", o.epoch_ms,
                 "checkpoint interval in milliseconds (output-driven: the default max interval)")
      ->check(CLI::Range(1, 60000));
  app.add_option("--epoch-policy", o.epoch_policy,
                 "when to checkpoint: fixed (every --epoch-ms) or output-driven (as soon as "
                 "guest output waits and the previous checkpoint is acknowledged, at least "
                 "--epoch-min-ms apart, at most --epoch-max-ms; the default)")
      ->check(CLI::IsMember({"fixed", "output-driven"}));
  app.add_option("--epoch-min-ms", o.epoch_min_ms,
                 "output-driven: shortest gap between checkpoints (ms; default 5, or the max "
                 "if shorter)")
      ->check(CLI::Range(1, 60000));
  app.add_option("--epoch-max-ms", o.epoch_max_ms,
                 "output-driven: longest gap between checkpoints (ms; default --epoch-ms)")
      ->check(CLI::Range(1, 60000));
  app.add_option("--max-inflight", o.max_inflight,
                 "checkpoints captured but not yet acknowledged before epochs stretch");
  app.add_option("--compression", o.compression, "auto|none|lz4|zstd")
      ->check(CLI::IsMember({"auto", "none", "lz4", "zstd"}));
  app.add_option("--scan-threads", o.scan_threads, "threads hashing guest RAM for dirty pages");
  app.add_option("--encode-threads", o.encode_threads,
                 "primary: threads delta-encoding and compressing each checkpoint (1: one lz4 "
                 "block, no helper thread)")
      ->check(CLI::Range(1u, 64u));
  app.add_option("--decode-threads", o.decode_threads,
                 "secondary: threads decompressing and resolving each checkpoint")
      ->check(CLI::Range(1u, 64u));
  app.add_option("--throttle", o.throttle,
                 "when the secondary cannot keep up: off (epochs stretch, the guest runs free) "
                 "or on (the guest is stopped in short windows so epochs stay under "
                 "--throttle-max-epoch-ms)")
      ->check(CLI::IsMember({"off", "on"}));
  app.add_option("--throttle-max-epoch-ms", o.throttle_max_epoch_ms,
                 "throttle: epochs longer than this slow the guest down (ms)")
      ->check(CLI::Range(1, 600000));
  app.add_option("--throttle-window-ms", o.throttle_window_ms,
                 "throttle: one run + stop cycle of the guest (ms)")
      ->check(CLI::Range(1, 60000));
  app.add_option("--throttle-min-duty", o.throttle_min_duty,
                 "throttle: the guest always runs at least this fraction of each window")
      ->check(CLI::Range(0.01, 1.0));
}

void add_engine_options(CLI::App& app, EngineOptions& o) {
  app.add_option("--engine", o.engine, "guest engine: synthetic or qmp")
      ->check(CLI::IsMember({"synthetic", "qmp"}));
  app.add_option("--memory-mib", o.memory_mib, "guest RAM in MiB");
  app.add_option("--disk-mib", o.disk_mib,
                 "replicated disk in MiB (0: none): the synthetic guest's disk; on a secondary the "
                 "replica disk <replica-dir>/<vm>.disk, which must match the primary's");
  app.add_option("--dirty-rate", o.dirty_rate, "synthetic: page writes per second");
  app.add_option("--locality", o.locality, "synthetic: fraction of writes to a hot 10% of pages")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", o.seed, "synthetic: workload seed");
  app.add_option("--bytes-per-write", o.bytes_per_write, "synthetic: bytes changed per write");
  app.add_option("--messages-per-sec", o.messages_per_sec, "synthetic: output messages per second");
  app.add_option("--output-log", o.output_log,
                 "synthetic primary: file receiving released output messages");
  app.add_option("--qemu", o.qemu_binary, "qmp: QEMU binary");
  app.add_option("--kernel", o.kernel, "qmp: guest kernel (default: the built test guest)");
  app.add_option("--initrd", o.initrd, "qmp: guest initramfs (default: the built test guest)");
  app.add_option("--append", o.append, "qmp: guest kernel command line");
  app.add_option("--mac", o.mac, "qmp: guest NIC MAC address (same on both hosts)");
  app.add_option("--tap", o.tap, "qmp: tap device ftd creates as the guest's host-side wire");
  app.add_option("--bridge", o.bridge, "qmp: bridge to attach the tap to");
  app.add_option("--run-dir", o.run_dir,
                 "qmp: directory for QEMU's pid file, sockets and logs (default /run/ftd/<vm>)");
  app.add_flag("--reattach", o.reattach,
               "qmp primary: take over the guest QEMU a crashed daemon left running in the run "
               "directory (no reboot) instead of launching one");
  app.add_option("--disk", o.disk,
                 "qmp primary: the guest's disk, PATH[,format=raw|qcow2] (virtio-blk), mirrored "
                 "into ftd for replication (docs/disks.md)");
  app.add_option("--disk-spill-dir", o.disk_spill_dir,
                 "qmp primary: where disk writes not yet checkpointed spill beyond 256 MiB "
                 "(default: the run directory)");
  app.add_option("--dirty-tracker", o.dirty_tracker,
                 "qmp: how dirty guest pages are found: auto (probe: uffd-wp, soft-dirty, scan), "
                 "uffd-wp, soft-dirty or scan")
      ->check(CLI::IsMember({"auto", "uffd-wp", "soft-dirty", "scan"}));
  app.add_option("--audit-every", o.audit_every,
                 "qmp: epochs between hash audits of the dirty tracker (0: never)");
  app.add_option("--uffd-preload", o.uffd_preload,
                 "qmp: libftd_uffd_preload.so loaded into QEMU for the uffd-wp tracker");
  app.add_option("--vm-spec", o.vm_spec_file,
                 "qmp: the VM's own QEMU options, one argument per line (docs/vm-spec.md); the "
                 "same file on both hosts");
  app.add_option("--qemu-arg", o.qemu_args,
                 "qmp: one QEMU argument of the VM spec, repeatable, after --vm-spec's (write "
                 "--qemu-arg=-smp --qemu-arg=2)")
      ->allow_extra_args(false);
  app.add_option("--libvirt-domain", o.libvirt_domain,
                 "qmp: protect this libvirt domain: its XML, read from --libvirt-uri, becomes the "
                 "VM spec (docs/vm-spec.md); ftd runs it, not libvirt");
  app.add_option("--libvirt-uri", o.libvirt_uri, "qmp: the libvirtd holding --libvirt-domain");
  app.add_flag("--verify-on-failover,!--no-verify-on-failover", o.verify_on_failover,
               "synthetic secondary: check the replica against a replay at failover");
}

PipelineConfig to_config(const PipelineOptions& o) {
  CompressionPolicy c = CompressionPolicy::kAuto;
  if (o.compression == "none") c = CompressionPolicy::kNone;
  if (o.compression == "lz4") c = CompressionPolicy::kLz4;
  if (o.compression == "zstd") c = CompressionPolicy::kZstd;
  const auto max = std::chrono::milliseconds(o.epoch_max_ms ? o.epoch_max_ms : o.epoch_ms);
  EpochPolicy epochs = EpochPolicy::fixed(std::chrono::milliseconds(o.epoch_ms));
  if (o.epoch_policy == "output-driven")
    epochs = {.kind = EpochPolicyKind::kOutputDriven,
              // An explicit --epoch-ms below 5 keeps working as the max.
              .min = o.epoch_min_ms ? std::chrono::milliseconds(o.epoch_min_ms)
                                    : std::min(std::chrono::milliseconds(5), max),
              .max = max};
  return {.epochs = epochs,
          .max_inflight = o.max_inflight,
          .compression = c,
          .scan_threads = o.scan_threads,
          .encode_threads = o.encode_threads,
          .throttle = {.enabled = o.throttle == "on",
                       .max_epoch = std::chrono::milliseconds(o.throttle_max_epoch_ms),
                       .window = std::chrono::milliseconds(o.throttle_window_ms),
                       .min_duty = o.throttle_min_duty}};
}

Status check_pipeline_options(const PipelineOptions& o) {
  if (o.epoch_policy == "fixed" && o.epoch_max_ms != 0 && o.epoch_max_ms != o.epoch_ms)
    return make_error(ErrorCode::kInvalidArgument,
                      "--epoch-max-ms {} with --epoch-policy fixed: the fixed interval is "
                      "--epoch-ms ({})",
                      o.epoch_max_ms, o.epoch_ms);
  FTD_TRY(check_throttle(to_config(o).throttle));
  return check_epoch_policy(to_config(o).epochs);
}

Result<std::unique_ptr<GuestEngine>> build_primary_engine(
    const EngineOptions& o, const std::string& vm,
    std::vector<std::unique_ptr<OutputGate>>& gates) {
  if (o.engine == "synthetic") {
    SyntheticEngine::MessageSink sink;
    if (!o.output_log.empty()) {
      FTD_ASSIGN_OR_RETURN(auto gate, MessageLogGate::open(o.output_log));
      auto* g = gate.get();
      sink = [g](uint64_t m) { g->push(m); };
      gates.push_back(std::move(gate));
    }
    FTD_ASSIGN_OR_RETURN(auto engine, SyntheticEngine::create(synthetic_config(o), sink));
    return std::unique_ptr<GuestEngine>(std::move(engine));
  }
  return build_qmp_engine(o, vm, gates);
}

Status check_engine_options(const EngineOptions& o, const std::string& role) {
  if (o.reattach && (o.engine != "qmp" || role != "primary"))
    return make_error(ErrorCode::kInvalidArgument,
                      "--reattach needs --role primary --engine qmp (it takes over a running "
                      "guest QEMU)");
  if (!o.disk.empty()) {
    if (o.engine != "qmp" || role != "primary")
      return make_error(ErrorCode::kInvalidArgument,
                        "--disk needs --role primary --engine qmp (the secondary's replica disk "
                        "comes from the checkpoints: give it --disk-mib)");
    FTD_TRY(parse_disk_spec(o.disk));
    // The predecessor's mirror job and NBD socket died with it: the writes
    // the guest made meanwhile reached nobody, so nothing vouches for the
    // replica disk, and the running mirror (if any) feeds a dead socket.
    if (o.reattach)
      return make_error(ErrorCode::kUnimplemented,
                        "--reattach with --disk is not supported: the crashed daemon's disk "
                        "mirror died with it (docs/disks.md); stop the guest and start ftd "
                        "without --reattach");
  }
  if (o.engine == "qmp" && role == "primary" && o.disk_mib != 0)
    return make_error(ErrorCode::kInvalidArgument,
                      "--disk-mib on a qmp primary: its disk is --disk PATH (the size is the "
                      "image's); --disk-mib sizes a secondary's replica disk");
  return ok();
}

Status resolve_vm_spec(EngineOptions& o, bool memory_given) {
  if (o.vm_spec_file.empty() && o.libvirt_domain.empty() && o.qemu_args.empty()) return ok();
  if (o.engine != "qmp")
    return make_error(ErrorCode::kInvalidArgument,
                      "--vm-spec/--qemu-arg/--libvirt-domain need --engine qmp");
  std::vector<std::string> args;
  if (!o.libvirt_domain.empty()) {
    if (!o.vm_spec_file.empty())
      return make_error(ErrorCode::kInvalidArgument,
                        "--libvirt-domain and --vm-spec: give the VM's definition once");
    FTD_ASSIGN_OR_RETURN(LibvirtVm domain, load_libvirt_domain(o.libvirt_uri, o.libvirt_domain));
    args = std::move(domain.spec_args);
    // The domain's NIC is the one ftd protects, with the domain's MAC.
    if (!domain.mac.empty()) o.mac = domain.mac;
  }
  if (!o.vm_spec_file.empty()) {
    FTD_ASSIGN_OR_RETURN(args, read_vm_spec_file(o.vm_spec_file));
  }
  args.insert(args.end(), o.qemu_args.begin(), o.qemu_args.end());
  FTD_ASSIGN_OR_RETURN(VmSpec spec, parse_vm_spec(args));
  if (spec.memory_mib) {
    if (memory_given && *spec.memory_mib != o.memory_mib)
      return make_error(ErrorCode::kInvalidArgument,
                        "VM spec: -m {}M disagrees with --memory-mib {} (give the size once)",
                        *spec.memory_mib, o.memory_mib);
    o.memory_mib = *spec.memory_mib;
  }
  o.spec = std::move(spec);
  return ok();
}

std::string vm_spec_digest(const EngineOptions& o) { return o.spec ? o.spec->digest() : ""; }

Result<std::unique_ptr<Activator>> build_activator(const EngineOptions& o, const std::string& vm,
                                                   const std::string& replica_dir) {
  if (o.engine == "synthetic")
    return std::unique_ptr<Activator>(
        std::make_unique<SyntheticActivator>(synthetic_config(o), o.verify_on_failover));
  return build_qmp_activator(o, vm, replica_dir);
}

}  // namespace ftd
