// Command-line options that choose and configure the guest engine (primary)
// and the matching activator (secondary), and the pipeline's knobs.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "checkpoint/guest_engine.h"
#include "checkpoint/pipeline.h"
#include "checkpoint/transport.h"
#include "qemu/vm_spec.h"
#include "secondary/activator.h"

namespace ftd {

struct PipelineOptions {
  int epoch_ms = 40;  // fixed: the interval; output-driven: the max unless --epoch-max-ms
  // fixed | output-driven (checkpoint/epoch_policy.h). output-driven by
  // measurement: bench/results/qemu_policy.json, docs/latency.md.
  std::string epoch_policy = "output-driven";
  int epoch_min_ms = 0;  // 0: 5 ms, or the max if that is shorter
  int epoch_max_ms = 0;  // 0: --epoch-ms
  size_t max_inflight = 4;
  std::string compression = "auto";
  unsigned scan_threads = 2;
  // Cores a checkpoint is delta-encoded + compressed on (primary), and
  // decompressed + resolved on (secondary): lz4 segments, docs/formats.md.
  unsigned encode_threads = 2;
  unsigned decode_threads = 2;
  // Overload throttle (checkpoint/throttle.h, docs/latency.md): off | on.
  std::string throttle = "off";
  int throttle_max_epoch_ms = 200;
  int throttle_window_ms = 20;
  double throttle_min_duty = 0.1;
};

struct EngineOptions {
  std::string engine = "synthetic";  // synthetic | qmp
  uint64_t memory_mib = 256;
  // The replicated disk: the synthetic guest's disk, and on a secondary the
  // size of the replica disk image. 0: no disk.
  uint64_t disk_mib = 0;
  // synthetic workload
  uint64_t dirty_rate = 1000;
  double locality = 0.5;
  uint64_t seed = 1;
  size_t bytes_per_write = 256;
  uint64_t messages_per_sec = 100;
  std::string output_log;  // released messages go here
  bool verify_on_failover = true;
  // qmp (real QEMU guest)
  std::string qemu_binary = "qemu-system-x86_64";
  std::string kernel;  // default: the test guest ($FTD_GUEST_DIR or ~/.cache/ftd/guest)
  std::string initrd;
  std::string append = "console=ttyS0 quiet";
  std::string mac = "52:54:00:12:34:56";
  std::string tap;     // host side of the guest's NIC (created by ftd)
  std::string bridge;  // attach the tap to this bridge
  std::string
      run_dir;  // QEMU pid file, QMP/NIC sockets, serial and QEMU logs; default /run/ftd/<vm>
  bool reattach = false;       // primary: take over the QEMU left running in run_dir
  std::string disk;            // qmp primary: "PATH[,format=raw|qcow2]" (docs/disks.md)
  std::string disk_spill_dir;  // where unshipped disk writes spill; default run_dir
  // qmp dirty tracking (tracking/): auto|uffd-wp|soft-dirty|scan
  std::string dirty_tracker = "auto";
  uint64_t audit_every = 100;  // epochs between hash audits of the tracker; 0: never
  std::string uffd_preload;    // libftd_uffd_preload.so; default: $FTD_UFFD_PRELOAD or the build's
  // qmp: the operator's machine definition (docs/vm-spec.md), the same on
  // both hosts: a file with one QEMU argument per line, then --qemu-arg's.
  std::string vm_spec_file;
  std::vector<std::string> qemu_args;
  // qmp: or a libvirt domain, read from a libvirtd (libvirt/, docs/vm-spec.md).
  std::string libvirt_domain;
  std::string libvirt_uri = "qemu:///system";
  // Resolved by resolve_vm_spec(): the validated spec, if any was given.
  std::optional<VmSpec> spec;
};

void add_pipeline_options(CLI::App& app, PipelineOptions& o);
void add_engine_options(CLI::App& app, EngineOptions& o);
PipelineConfig to_config(const PipelineOptions& o);
// The epoch flags make a usable policy (min <= max).
Status check_pipeline_options(const PipelineOptions& o);

// Builds the primary's engine; output gates it feeds are appended to `gates`.
Result<std::unique_ptr<GuestEngine>> build_primary_engine(
    const EngineOptions& o, const std::string& vm, std::vector<std::unique_ptr<OutputGate>>& gates);
// Flag combinations the engines cannot honour (checked before anything starts).
Status check_engine_options(const EngineOptions& o, const std::string& role);
// Reads --vm-spec/--qemu-arg into `o.spec` (validated) and takes the guest's
// memory from the spec's -m; `memory_given`: --memory-mib was on the command
// line (it must then agree with -m).
Status resolve_vm_spec(EngineOptions& o, bool memory_given);
// What both hosts compare in the replication Hello: the spec's digest, ""
// without a spec (ftd's built-in guest, or the synthetic engine).
std::string vm_spec_digest(const EngineOptions& o);
// `replica_dir`: where the replica (and its disk, with --disk-mib) lives.
Result<std::unique_ptr<Activator>> build_activator(const EngineOptions& o, const std::string& vm,
                                                   const std::string& replica_dir);

}  // namespace ftd
