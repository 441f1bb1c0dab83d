#!/usr/bin/env python3
"""QEMU's own pre-copy live migration between two plain QEMUs, no ftd involved:
does the guest kernel survive it? (issue 8: migrate_bench's QEMU cells lost the
guest to a kernel panic after a migration; this tells the bench's setup apart
from QEMU itself; results: bench/results/qemu_tcg_migration_repro.json.)

usage: qemu_tcg_migration_repro.py VARIANT RUNS [MIB] [MEMLOAD_RATE] [DOWNTIME_MS]
  VARIANT: plain   (anonymous RAM, QEMU's default)
           memfd   (memory-backend-memfd share=on, as ftd's primary)
           shmfile (memory-backend-file share=on in /dev/shm, as migrate_bench's target)
  env EXTRA="-accel tcg,thread=single" adds QEMU options (here: no MTTCG);
  env NOCONT=1 resumes the destination after the migration instead of autostart.
Boots the test guest (FTD_GUEST_DIR or ~/.cache/ftd/guest) with ftd.memload,
then migrates it RUNS times over a unix socket (QEMU 7.2 defaults), each
destination becoming the next source; after each, waits 6 s and reads the
destination's console for an oops/panic and for memload's 5 s heartbeat.
Prints one JSON line per migration; writes result.json in its work dir under
/tmp/pm-repro. Kills only the QEMUs it started."""
import json, os, socket, subprocess, sys, time

variant, runs = sys.argv[1], int(sys.argv[2])
mib = int(sys.argv[3]) if len(sys.argv) > 3 else 128
rate = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
downtime = int(sys.argv[5]) if len(sys.argv) > 5 else 0
guest = os.environ.get("FTD_GUEST_DIR", os.path.expanduser("~/.cache/ftd/guest"))
work = f"/tmp/pm-repro/{variant}-{os.getpid()}"
os.makedirs(work, exist_ok=True)

class Qmp:
    def __init__(self, path):
        for _ in range(200):
            try:
                self.s = socket.socket(socket.AF_UNIX); self.s.connect(path); break
            except OSError: time.sleep(0.05)
        self.f = self.s.makefile("rw"); self.f.readline(); self.cmd("qmp_capabilities")
    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n"); self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r: return r["return"]
            if "error" in r: raise RuntimeError(f"{name}: {r['error']}")

def launch(name, incoming):
    ram = {"plain": [], "memfd": ["-object", f"memory-backend-memfd,id=ram0,size={mib}M,share=on"],
           "shmfile": ["-object", f"memory-backend-file,id=ram0,size={mib}M,share=on,mem-path=/dev/shm/pm-repro-{os.getpid()}-{name}"]}[variant]
    machine = ("pc" if "-accel" in os.environ.get("EXTRA", "") else "pc,accel=tcg") + ("" if variant == "plain" else ",memory-backend=ram0")
    append = f"console=ttyS0 quiet ftd.tick=1 ftd.memload={min(64, mib // 4)}:{rate}"
    argv = ["qemu-system-x86_64", "-machine", machine, "-m", f"{mib}M", "-nodefaults", "-nographic",
            "-vga", "none", "-no-user-config", *ram, "-qmp", f"unix:{work}/{name}.qmp,server=on,wait=off",
            "-serial", f"file:{work}/{name}.serial", "-monitor", "none", "-kernel", f"{guest}/vmlinuz",
            "-initrd", f"{guest}/initrd.img", "-append", append]
    argv += os.environ.get("EXTRA", "").split()
    if incoming: argv += ["-S", "-incoming", "defer"]
    p = subprocess.Popen(argv, stderr=open(f"{work}/{name}.stderr", "w"))
    return p, Qmp(f"{work}/{name}.qmp")

def serial(name):
    try: return open(f"{work}/{name}.serial", errors="replace").read()
    except FileNotFoundError: return ""

src, sq = launch("s0", False)
deadline = time.time() + 120
while "ftd-memload start" not in serial("s0") and time.time() < deadline: time.sleep(0.2)
time.sleep(3)
procs = [src]; name = "s0"; result = {"extra": os.environ.get("EXTRA", ""), "nocont": bool(os.environ.get("NOCONT")), "variant": variant, "mib": mib, "rate": rate, "runs": []}
for i in range(runs):
    dname = f"d{i}"
    dst, dq = launch(dname, True); procs.append(dst)
    dq.cmd("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])
    dq.cmd("migrate-incoming", uri=f"unix:{work}/{dname}.mig")
    if not os.environ.get("NOCONT"): dq.cmd("cont")  # autostart when the incoming migration completes, as migrate_bench does
    if downtime: sq.cmd("migrate-set-parameters", **{"downtime-limit": downtime})
    t0 = time.time(); sq.cmd("migrate", uri=f"unix:{work}/{dname}.mig")
    while True:
        st = sq.cmd("query-migrate")
        if st.get("status") in ("completed", "failed", "cancelled"): break
        if time.time() - t0 > 120: sq.cmd("migrate_cancel"); st = {"status": "timeout"}; break
        time.sleep(0.05)
    if os.environ.get("NOCONT"):
        while dq.cmd("query-status").get("status") == "inmigrate" and time.time() - t0 < 150: time.sleep(0.02)
        dq.cmd("cont")
    while not dq.cmd("query-status").get("running") and time.time() - t0 < 150: time.sleep(0.02)
    time.sleep(6)  # memload prints every 5 s: a live guest prints again
    text = serial(dname)
    panic = "Kernel panic" in text or "Oops" in text or "BUG:" in text
    alive = text.count("ftd-memload written=") > 0
    result["runs"].append({"run": i, "status": st.get("status"), "downtime_ms": st.get("downtime"),
                           "total_ms": st.get("total-time"), "panic": panic, "alive": alive})
    print(json.dumps(result["runs"][-1]), flush=True)
    src.kill(); src.wait()
    if panic or not alive: result["dead_serial_head"] = text[-6000:]; break
    src, sq, name = dst, dq, dname
for p in procs:
    if p.poll() is None: p.kill(); p.wait()
for f in os.listdir("/dev/shm"):
    if f.startswith(f"pm-repro-{os.getpid()}-"): os.unlink("/dev/shm/" + f)
json.dump(result, open(f"{work}/result.json", "w"), indent=1)
print(work)
