#!/usr/bin/env bash
# The Pacemaker agent deploy/ocf/ftd against real ftd daemons (synthetic
# engine, loopback): Debian's ocf-tester (every action, cold-boot promote),
# then the failover promote (a live primary is SIGKILLed, promote activates
# the replica, monitor says promoted), then validate-all's refusals, then two
# instances ("nodeA", "nodeB"): cold start and protection by notification, a
# promote of the replica while the peer still runs refused, then Pacemaker's
# sequence for a move (pre-demote notification, demote, promote): a planned
# migration, which promote finds done.
# Usage: ocf_agent_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
SRC=$1 BUILD=$2
AGENT=$SRC/deploy/ocf/ftd
FTD=$BUILD/daemon/ftd FTCTL=$BUILD/tools/ftctl/ftctl
command -v ocf-tester >/dev/null || { echo "ocf-tester missing (apt-get install resource-agents)"; exit 1; }
work=$(mktemp -d /tmp/ftd-ocf-test.XXXXXX)
replica=$(mktemp -d /dev/shm/ftd-ocf-test.XXXXXX)
primary_pid=
cleanup() {
  [[ -n $primary_pid ]] && kill -KILL "$primary_pid" 2>/dev/null
  # The agent's own stop (SIGTERM, then SIGKILL) ends the daemon it started.
  run_agent stop >/dev/null 2>&1
  run_on a stop >/dev/null 2>&1
  run_on b stop >/dev/null 2>&1
  rm -rf "$work" "$replica"
}
trap cleanup EXIT
failures=0
check() { # check NAME EXPECTED ACTUAL
  if [[ $2 == "$3" ]]; then echo "ok: $1 ($3)"; else echo "FAILED: $1: expected $2, got $3"; failures=$((failures + 1)); fi
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
cat >"$work/vmt.conf" <<CONF
engine = "synthetic"
memory-mib = 16
listen = "127.0.0.1:$port"
replica-dir = "$replica"
CONF
params=(vm=vmt config="$work/vmt.conf" control="unix:$work/agent.sock" ftd="$FTD" ftctl="$FTCTL"
  log="$work/ftd.log")
# Promotion scores go to a file-backed CIB (CIB_file): crm_attribute writes it
# as in a cluster, and the test reads back what the agent set.
node=$(uname -n)
export CIB_file=$work/cib.xml
cibadmin --empty >"$CIB_file"
cibadmin --create -o nodes --xml-text "<node id=\"1\" uname=\"$node\"/>"
cibadmin --create -o status --xml-text "<node_state id=\"1\" uname=\"$node\"/>"
score() { OCF_RESOURCE_INSTANCE=vmt crm_attribute -p -G -q 2>/dev/null || echo none; }
run_agent() { # run_agent ACTION [extra K=V...]: the agent as Pacemaker calls it
  local action=$1 envs=()
  shift
  for p in "${params[@]}" "$@"; do envs+=("OCF_RESKEY_$p"); done
  env -i PATH="$PATH" OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=vmt HA_RSCTMP="$work/rsctmp" \
    CIB_file="$CIB_file" OCF_RESKEY_crm_feature_set=3.16.2 \
    "${envs[@]}" \
    "$AGENT" "$action"
}
mkdir -p "$work/rsctmp"

# 1. ocf-tester: meta-data, validate-all, monitor 7/0/8, start/stop twice,
#    promote/demote twice (cold boot: no replica exists on a single node).
tester_opts=()
for p in "${params[@]}" allow_cold_boot=true; do tester_opts+=(-o "$p"); done
HA_RSCTMP=$work/rsctmp ocf-tester -n vmt "${tester_opts[@]}" "$AGENT" >"$work/tester.log" 2>&1
rc=$?
tail -n 3 "$work/tester.log"
check "ocf-tester" 0 $rc
[[ $rc == 0 ]] || cat "$work/tester.log"

# 2. Promote by failover: a live primary feeds the agent's secondary, dies, and
#    promote activates the replica at its last epoch.
run_agent start
check "start (secondary)" 0 $?
"$FTD" --role primary --vm vmt --memory-mib 16 --peer "127.0.0.1:$port" --epoch-ms 30 \
  --control "unix:$work/primary.sock" >"$work/primary.log" 2>&1 &
primary_pid=$!
for _ in $(seq 150); do
  "$FTCTL" -c "unix:$work/agent.sock" status --json 2>/dev/null | grep -q '"state":"protected"' && break
  sleep 0.2
done
run_agent monitor
check "monitor while the primary streams: unpromoted" 0 $?
check "  promotion score of a live replica" 100 "$(score)"
kill -KILL "$primary_pid"
wait "$primary_pid" 2>/dev/null
primary_pid=
for _ in $(seq 100); do
  "$FTCTL" -c "unix:$work/agent.sock" status --json | grep -q '"state":"protected"' || break
  sleep 0.1
done
run_agent monitor
check "monitor once the primary is gone: unpromoted" 0 $?
check "  promotion score of a consistent replica without primary" 50 "$(score)"
run_agent promote promote_wait=10 2>"$work/promote.log"
check "promote (failover)" 0 $?
grep -q "failed over at epoch" "$work/promote.log"
check "  ...by ftctl failover" 0 $?
grep -q "promote.path=failover" "$work/promote.log"
check "  ...logged as the failover path" 0 $?
run_agent monitor
check "monitor after failover: promoted" 8 $?
check "  promotion score of the running VM" 1000 "$(score)"
status=$("$FTCTL" -c "unix:$work/agent.sock" status --json)
check "replica activated" 1 "$(grep -c '"state":"active"' <<<"$status")"
run_agent stop
check "stop" 0 $?
run_agent monitor
check "monitor after stop" 7 $?
check "  promotion score removed" none "$(score)"

# 3. Promote refuses a never-synced replica unless cold boot is allowed.
run_agent start >/dev/null
run_agent monitor
check "  promotion score of a never-synced replica" none "$(score)"
run_agent promote 2>"$work/promote.err"
check "promote of an epoch-0 replica without allow_cold_boot" 1 $?
grep -q "never synced" "$work/promote.err"
check "  ...says why" 0 $?
run_agent stop >/dev/null

# 4. validate-all: bad configuration is refused with the OCF code and a reason.
echo 'arbiter = "witness"' >>"$work/vmt.conf"
run_agent validate-all 2>"$work/validate.err"
check "validate-all with ftd's own arbiter configured" 6 $?
grep -q "Pacemaker decides" "$work/validate.err"
check "  ...says why" 0 $?
run_agent validate-all config="$work/missing.conf" 2>/dev/null
check "validate-all with a missing config" 6 $?
run_agent validate-all ftd=/nonexistent/ftd 2>/dev/null
check "validate-all without ftd installed" 5 $?
run_agent stop ftd=/nonexistent/ftd 2>/dev/null
check "stop without ftd installed" 0 $?
run_agent meta-data | python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.stdin)'
check "meta-data is well-formed XML" 0 $?

# 5. Two nodes on loopback, each with its own agent state, socket and replica:
#    Pacemaker's calls for a cold start, then for `pcs resource move`.
declare -A ports=([a]=$(free_port) [b]=$(free_port))
for n in a b; do
  mkdir -p "$replica/$n" "$work/rsctmp-$n"
  printf 'engine = "synthetic"\nmemory-mib = 16\nlisten = "127.0.0.1:%s"\nreplica-dir = "%s"\n' \
    "${ports[$n]}" "$replica/$n" >"$work/$n.conf"
done
peers="nodeA=127.0.0.1:${ports[a]} nodeB=127.0.0.1:${ports[b]}"
run_on() { # run_on a|b ACTION [K=V...]: the agent as Pacemaker calls it on nodeA/nodeB
  local n=$1 action=$2 envs=()
  shift 2
  for p in vm=vmt config="$work/$n.conf" control="unix:$work/$n.sock" ftd="$FTD" ftctl="$FTCTL" \
    log="$work/$n.log" peers="$peers" allow_cold_boot=true "$@"; do envs+=("OCF_RESKEY_$p"); done
  env -i PATH="$PATH" OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=vmt HA_RSCTMP="$work/rsctmp-$n" \
    OCF_RESKEY_crm_feature_set=3.16.2 OCF_RESKEY_CRM_meta_on_node="node${n^^}" "${envs[@]}" \
    "$AGENT" "$action"
}
state_of() { # role/state of the VM on a|b, from ftctl status --json
  "$FTCTL" -c "unix:$work/$1.sock" status --json 2>/dev/null |
    python3 -c 'import json, sys; v = json.load(sys.stdin)[0]; print(v["role"] + "/" + v["state"])' 2>/dev/null
}
wait_state() { # wait_state a|b ROLE/STATE SECONDS
  for _ in $(seq $(($3 * 5))); do [[ $(state_of "$1") == "$2" ]] && return 0; sleep 0.2; done
  return 1
}
notify() { # notify a|b TYPE OPERATION [K=V...]
  local n=$1 t=$2 o=$3
  shift 3
  run_on "$n" notify CRM_meta_notify_type="$t" CRM_meta_notify_operation="$o" "$@"
}
run_on a start && run_on b start
check "two nodes start as replicas" 0 $?
run_on a promote 2>"$work/a-promote.log"
check "nodeA promote (first start: cold boot)" 0 $?
grep -q "promote.path=cold-boot" "$work/a-promote.log"
check "  ...logged as cold boot" 0 $?
notify a post promote CRM_meta_notify_unpromoted_uname=nodeB 2>/dev/null
wait_state b secondary/protected 30
check "post-promote notification protects the VM to nodeB" 0 $?
run_on b monitor
check "nodeB monitor: unpromoted replica" 0 $?

# crm_resource --force-promote of the replica while nodeA runs the VM (no
# demote): two copies must never run, so promote refuses after promote_wait.
run_on b promote promote_wait=2 2>"$work/b-force.log"
check "promote while the peer still runs the VM" 1 $?
grep -q "not failing over from a live primary" "$work/b-force.log"
check "  ...says why" 0 $?
run_on a monitor
check "  ...the peer still runs it" 8 $?
check "  ...and still replicates to nodeB" secondary/protected "$(state_of b)"

# pcs resource move: both sides get the pre-demote notification (nodeA
# demoted, nodeB promoted), then nodeA is demoted, then nodeB promoted.
move=(CRM_meta_notify_demote_uname=nodeA CRM_meta_notify_promote_uname=nodeB)
notify a pre demote "${move[@]}" 2>/dev/null && notify b pre demote "${move[@]}" 2>/dev/null
check "pre-demote notifications" 0 $?
run_on a demote 2>"$work/a-demote.log"
check "nodeA demote with nodeB in sync" 0 $?
grep -q "planned migration to nodeB" "$work/a-demote.log"
check "  ...by planned migration" 0 $?
grep -o "downtime [0-9.]* ms" "$work/a-demote.log" | head -n 1
run_on a monitor
check "nodeA after demote: unpromoted (the same daemon, now the replica)" 0 $?
grep -q "migration.done" "$work/a.log"
check "  nodeA's ftd logged migration.done" 0 $?
run_on b promote 2>"$work/b-promote.log"
check "nodeB promote" 0 $?
grep -q "promote.path=already-running" "$work/b-promote.log"
check "  ...found the VM handed over (no failover)" 0 $?
grep -q "promote.path=failover" "$work/b-promote.log"
check "  ...and did not fail over" 1 $?
run_on b monitor
check "nodeB monitor: promoted" 8 $?
# (The synthetic engine cannot protect an activated replica, so nodeB does
# not protect the VM back to nodeA here; the e2e PlannedMigration tests cover
# that with QEMU.)

echo "ocf agent: $failures check(s) failed"
exit $((failures > 0))
