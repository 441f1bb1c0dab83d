#!/usr/bin/env bash
# deploy/demo.sh — ftd end to end on one machine, as root on Debian 12:
# installs what is missing, builds ftd and the test guest, and protects the
# guest with a primary/secondary pair on a small simulated LAN where every
# host is its own network namespace:
#
#   switch  (ftdd-sw-<pid>)   one bridge; every host below has a veth to it
#   pri     (ftdd-pri-<pid>)  10.77.0.11 on bridge brvm: ftd primary + QEMU
#   sec     (ftdd-sec-<pid>)  10.77.0.12 on bridge brvm: ftd secondary + standby QEMU
#   arb     (ftdd-arb-<pid>)  10.77.0.13: ftd-witness (lease arbiter)
#   client  (ftdd-cli-<pid>)  10.77.0.10: ftd-record-client
#   guest                     10.77.0.2, bridged onto the LAN by whichever side runs it
#
# (the topology of tests/e2e/host_lan.cc, the flags of tests/e2e/protected_pair.cc).
# It streams numbered TCP records to the guest from the client, powers off the
# primary host (deploy/fence/kill-netns-host.sh: links down, every process in
# it SIGKILLed) and then does NOTHING: the secondary notices the missing
# heartbeats, takes the lease from the witness and activates by itself. The
# demo shows how long that took and the SAME TCP connection carrying on.
# Exit status: 0 iff the secondary activated and the record stream lost,
# duplicated and reordered nothing.
#
# Environment knobs:
#   FTD_DEMO_BUILD=<dir>    build directory (default <repo>/build)
#   FTD_DEMO_TARGETS="..."  ninja targets (default: everything)
#   FTD_DEMO_NO_APT=1       never call apt-get (same as FTD_NO_APT=1)
#   FTD_DEMO_STREAM_S=5     seconds of protected streaming before the kill
#   FTD_DEMO_AFTER_S=8      seconds of streaming after the secondary is active
#   FTD_DEMO_EPOCH_MS=50    checkpoint interval
#   FTD_DEMO_LEASE_MS=1000  witness lease duration
#   FTD_DEMO_ACTIVE_S=30    how long to wait for the automatic activation
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FTD_DEMO_BUILD:-$ROOT/build}
STREAM_S=${FTD_DEMO_STREAM_S:-5}
AFTER_S=${FTD_DEMO_AFTER_S:-8}
EPOCH_MS=${FTD_DEMO_EPOCH_MS:-50}
LEASE_MS=${FTD_DEMO_LEASE_MS:-1000}
ACTIVE_S=${FTD_DEMO_ACTIVE_S:-30}
GUEST_IP=10.77.0.2
GUEST_MAC=52:54:00:12:34:56
PRI_IP=10.77.0.11 SEC_IP=10.77.0.12 ARB_IP=10.77.0.13 CLI_IP=10.77.0.10
# Every host has its own port space, so fixed ports never collide.
REPL_PORT=7400 HB_PORT=7401 WITNESS_PORT=7402

say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }
die() {
  printf '\033[1;31m[demo] FAILED:\033[0m %s\n' "$*" >&2
  exit 1
}
# Prefixes every line of a stream (for the daemons' and client's output).
prefix() { sed -u "s/^/$1 /"; }
now_ms() { date +%s%3N; }

[[ $(id -u) == 0 ]] || die "run as root (namespaces, bridges, taps)"

# --- 1. packages (the one list, shared with the test command) ----------------
[[ -n ${FTD_DEMO_NO_APT:-} ]] && export FTD_NO_APT=1
"$ROOT/deploy/install-deps.sh" | prefix "[apt]"

# --- 2. build -----------------------------------------------------------------
say "building in $BUILD"
[[ -f $BUILD/build.ninja ]] || cmake -S "$ROOT" -B "$BUILD" -G Ninja | prefix "[cmake]"
# shellcheck disable=SC2086  # the target list is meant to split
ninja -C "$BUILD" ${FTD_DEMO_TARGETS:-} | prefix "[ninja]"
say "building the test guest (cached after the first time)"
ninja -C "$BUILD" guest | prefix "[ninja]"
GUEST=$(cat "$BUILD/guest.path")
FTD=$BUILD/daemon/ftd
FTCTL=$BUILD/tools/ftctl/ftctl
WITNESS=$BUILD/witness/ftd-witness
CLIENT=$BUILD/tools/record_client/ftd-record-client
FENCE=$ROOT/deploy/fence/kill-netns-host.sh
for f in "$FTD" "$FTCTL" "$WITNESS" "$CLIENT" "$FENCE" "$GUEST/vmlinuz" "$GUEST/initrd.img"; do
  [[ -e $f ]] || die "missing $f after the build"
done

# --- 3. state, and the cleanup that undoes all of it -----------------------------
ID=$$
SW=ftdd-sw-$ID PRI=ftdd-pri-$ID SEC=ftdd-sec-$ID ARB=ftdd-arb-$ID CLI=ftdd-cli-$ID
HOSTS=("$PRI" "$SEC" "$ARB" "$CLI")
RUN=$(mktemp -d /tmp/ftd-demo-XXXXXX)
REPLICA=/dev/shm/ftd-demo-$ID
PIDS=() # everything started directly (daemons, witness, client)

# Starts "$@" in the background and records its PID. The daemons and the
# witness end by SIGKILL on purpose (the fence, the cleanup): disowned, so
# bash prints no "Killed" job notices for them.
spawn_daemon() {
  "$@" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  disown "$LAST_PID"
}

cleanup() {
  local rc=$?
  set +e
  say "cleaning up"
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  # What the daemons started (the QEMUs) outlives a killed ftd: every process
  # left in one of our host namespaces is ours, so kill those by PID too.
  for ns in "${HOSTS[@]}"; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    # shellcheck disable=SC2086  # one PID per word
    [[ -n $pids ]] && kill -9 $pids 2>/dev/null
  done
  # Disowned processes cannot be waited for: poll until they are gone.
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  done
  wait 2>/dev/null
  # Deleting the namespaces removes their links (veths, bridges, taps) too.
  for ns in "${HOSTS[@]}" "$SW"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$REPLICA"
  if ((rc != 0)); then
    say "logs kept in $RUN"
  else
    rm -rf "$RUN"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 4. the LAN: one namespace per host, all joined by a switch namespace -------
# Waits until a link's operstate is UP: set by linkwatch up to ~1 s after
# carrier, in the same step that lets a bridge port forward, so once it holds
# the LAN really works.
wait_link_up() {
  local ns=$1 dev=$2
  for _ in $(seq 100); do
    ip -n "$ns" -o link show dev "$dev" | grep -q ' state UP ' && return 0
    sleep 0.05
  done
  die "link $dev in $ns not up"
}

# add_host <ns> <switch port name> <address/24> [<brvm MAC>]
# With a MAC, the host is a VM host: its uplink is a port of bridge brvm and
# the address lives on brvm, so ftd's tap joins the same L2 segment and the
# guest reaches the LAN directly. brvm gets a fixed MAC because a bridge
# otherwise takes its lowest port's: when the tap joined, the host address
# would change MAC and the peers' ARP entries would go stale.
add_host() {
  local ns=$1 port=$2 cidr=$3 mac=${4:-}
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$SW" link add "$port" type veth peer name uplink netns "$ns"
  ip -n "$SW" link set "$port" master sw0
  ip -n "$SW" link set "$port" up
  ip -n "$ns" link set uplink up
  if [[ -n $mac ]]; then
    ip -n "$ns" link add brvm type bridge
    ip -n "$ns" link set brvm address "$mac"
    ip -n "$ns" link set uplink master brvm
    ip -n "$ns" link set brvm up
    ip -n "$ns" addr add "$cidr" dev brvm
  else
    ip -n "$ns" addr add "$cidr" dev uplink
  fi
}

say "network: switch $SW; hosts $PRI ($PRI_IP), $SEC ($SEC_IP), $ARB ($ARB_IP), $CLI ($CLI_IP)"
ip netns add "$SW"
ip -n "$SW" link set lo up
ip -n "$SW" link add sw0 type bridge
ip -n "$SW" link set sw0 up
add_host "$PRI" pri "$PRI_IP/24" 02:77:00:00:00:0b
add_host "$SEC" sec "$SEC_IP/24" 02:77:00:00:00:0c
add_host "$ARB" arb "$ARB_IP/24"
add_host "$CLI" cli "$CLI_IP/24"
for port in pri sec arb cli; do wait_link_up "$SW" "$port"; done
for ns in "${HOSTS[@]}"; do wait_link_up "$ns" uplink; done
mkdir -p "$RUN/primary" "$RUN/secondary" "$RUN/witness-state" "$REPLICA"

# --- 5. keys: one shared by the heartbeat pair, one per witness holder -----------
random_hex_key() {
  if command -v openssl >/dev/null; then
    openssl rand -hex 32
  else
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
    echo
  fi
}
(
  umask 077 # secrets: mode 0600
  random_hex_key >"$RUN/heartbeat.key"
  random_hex_key >"$RUN/pri.key"
  random_hex_key >"$RUN/sec.key"
  # The witness knows each holder's key and nothing else.
  printf 'vm0/pri %s\nvm0/sec %s\n' "$(cat "$RUN/pri.key")" "$(cat "$RUN/sec.key")" \
    >"$RUN/witness.keys"
)

# Mutual TLS for replication (10.77.0.x is reachable from other hosts, so ftd
# refuses plaintext there): a CA for this demo, a certificate per host, and
# each side accepts only the other's name (docs/security.md).
if command -v openssl >/dev/null; then
  "$ROOT/deploy/ftd-certs.sh" "$RUN/pki" pri sec
  tls_args() { TLS_ARGS=(--tls-cert "$RUN/pki/$1.pem" --tls-key "$RUN/pki/$1.key"
    --tls-ca "$RUN/pki/ca.pem" --peer-identity "$2"); }
else
  tls_args() { TLS_ARGS=(--insecure); }
fi

# --- 6. witness and daemons -------------------------------------------------------
say "starting ftd-witness on $ARB_IP:$WITNESS_PORT (lease ${LEASE_MS} ms)"
spawn_daemon ip netns exec "$ARB" "$WITNESS" --listen "$ARB_IP:$WITNESS_PORT" \
  --state-dir "$RUN/witness-state" --keys "$RUN/witness.keys" --lease-ms "$LEASE_MS" \
  >"$RUN/witness.log" 2>&1
for _ in $(seq 100); do grep -q witness_started "$RUN/witness.log" && break; sleep 0.1; done
grep -q witness_started "$RUN/witness.log" || { cat "$RUN/witness.log"; die "witness did not start"; }

# daemon_args <self ip> <peer ip> <holder> <key file>: what both sides share.
# The heartbeat goes both ways between the hosts' addresses; the witness
# decides which side may run the VM alone when they lose each other.
daemon_args() {
  DAEMON_ARGS=(--vm vm0 --engine qmp --memory-mib 128 --kernel "$GUEST/vmlinuz"
    --initrd "$GUEST/initrd.img" --append "console=ttyS0 quiet ftd.ip=$GUEST_IP/24 ftd.tick=1"
    --mac "$GUEST_MAC" --bridge brvm
    --heartbeat-link "$1:$HB_PORT=$2:$HB_PORT" --heartbeat-key "$RUN/heartbeat.key"
    --arbiter witness --witness "$ARB_IP:$WITNESS_PORT" --witness-holder "$3" --witness-key "$4")
}
PCTL=unix:$RUN/primary.ctl
SCTL=unix:$RUN/secondary.ctl
status_json() { "$FTCTL" --control "$1" --timeout 2 status --json 2>/dev/null; }
field() { jq -r ".[0].$1" <<<"$2"; }

say "starting the secondary in $SEC (prelaunches a standby QEMU on the replica file)"
daemon_args "$SEC_IP" "$PRI_IP" vm0/sec "$RUN/sec.key"
tls_args sec pri
spawn_daemon ip netns exec "$SEC" "$FTD" --role secondary "${DAEMON_ARGS[@]}" "${TLS_ARGS[@]}" --control "$SCTL" \
  --listen "$SEC_IP:$REPL_PORT" --replica-dir "$REPLICA" --tap ftdtap0 --run-dir "$RUN/secondary" \
  >"$RUN/secondary.log" 2>&1
for _ in $(seq 100); do status_json "$SCTL" >/dev/null && break; sleep 0.1; done
status_json "$SCTL" >/dev/null || { tail -20 "$RUN/secondary.log"; die "secondary did not start"; }

say "starting the primary in $PRI (launches the guest, then the initial sync to $SEC_IP:$REPL_PORT)"
daemon_args "$PRI_IP" "$SEC_IP" vm0/pri "$RUN/pri.key"
tls_args pri sec
T_START=$(now_ms)
spawn_daemon ip netns exec "$PRI" "$FTD" --role primary "${DAEMON_ARGS[@]}" "${TLS_ARGS[@]}" --control "$PCTL" \
  --peer "$SEC_IP:$REPL_PORT" --epoch-ms "$EPOCH_MS" --tap ftdtap0 --run-dir "$RUN/primary" \
  >"$RUN/primary.log" 2>&1
PRI_PID=$LAST_PID

# One line of the primary's numbers.
show_primary() {
  local j
  j=$(status_json "$PCTL") || { echo "[ftctl] primary not answering"; return; }
  jq -r '.[0] | "[ftctl] primary \(.state) epoch=\(.epoch) acked=\(.acked_epoch) sync=\(.sync_progress*100|floor)% ckpt/s=\(.checkpoints_per_sec*10|round/10) pause_p50=\(.pause_p50_us/1000)ms lag=\(.lag_ms|round)ms held=\(.output_held) released=\(.output_released) hb=\(.failover.heartbeat_age_ms)ms \(.detail)"' <<<"$j"
}

deadline=$((SECONDS + 300))
state=
while [[ $state != protected ]]; do
  ((SECONDS < deadline)) || { tail -30 "$RUN/primary.log"; die "primary never reached 'protected'"; }
  kill -0 "$PRI_PID" 2>/dev/null || { tail -30 "$RUN/primary.log"; die "primary ftd exited"; }
  sleep 1
  show_primary
  j=$(status_json "$PCTL") && state=$(field state "$j")
done
say "guest protected after $(($(now_ms) - T_START)) ms; waiting for it to finish booting"
until grep -q FTD-GUEST-READY "$RUN/primary/serial.log" 2>/dev/null; do
  ((SECONDS < deadline)) || die "guest never printed FTD-GUEST-READY"
  sleep 1
  show_primary
done
say "guest: $(grep -m1 FTD-GUEST-READY "$RUN/primary/serial.log")"

# --- 7. the client: one TCP connection, numbered records, every reply verified -
say "client: ftd-record-client $GUEST_IP:7000 at 50 records/s (namespace $CLI)"
ip netns exec "$CLI" "$CLIENT" "$GUEST_IP" --rate 50 --recv-timeout 60 --connect-timeout 30 \
  --progress 1 --json-out "$RUN/record.json" \
  > >(prefix "[client]") 2>&1 &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")
for _ in $(seq "$STREAM_S"); do sleep 1; show_primary; done
say "ftctl status, both sides (note the failover: block: arbiter, term, heartbeat age)"
"$FTCTL" --control "$PCTL" --timeout 2 status | prefix "[ftctl pri]" || true
"$FTCTL" --control "$SCTL" --timeout 2 status | prefix "[ftctl sec]" || true

# --- 8. the primary host dies; nobody tells the secondary -----------------------
SEC_LOG_LINES=$(wc -l <"$RUN/secondary.log")
WITNESS_LOG_LINES=$(wc -l <"$RUN/witness.log")
say "KILLING THE PRIMARY HOST: $FENCE $PRI (links down, SIGKILL to ftd + QEMU)"
T_KILL=$(now_ms)
"$FENCE" "$PRI" | prefix "[fence]" || die "could not power off $PRI"
say "no ftctl failover: waiting for the secondary to activate by itself"
# Poll the secondary and print each state it passes through, with the time
# since the kill. "active" is the VM state once the standby QEMU runs the guest.
last='' active_ms=''
while [[ -z $active_ms ]]; do
  t=$(now_ms)
  if ((t - T_KILL > ACTIVE_S * 1000)); then
    tail -30 "$RUN/secondary.log"
    die "secondary not active ${ACTIVE_S}s after the kill"
  fi
  if j=$("$FTCTL" --control "$SCTL" --timeout 2 status --json 2>&1); then
    now=$(jq -r '.[0] | "\(.state) (failover \(.failover.state), decision \(.failover.decision), heartbeat \(.failover.heartbeat_age_ms) ms ago)"' <<<"$j")
    [[ $(field state "$j") == active ]] && active_ms=$((t - T_KILL))
  else
    now="(status not answering: ${j//$'\n'/ })"
  fi
  [[ $now != "$last" ]] && echo "[ftctl sec] +$((t - T_KILL)) ms: $now"
  last=$now
  [[ -n $active_ms ]] || sleep 0.05
done
# The poll sees "active" a little late (ftctl's own start-up, the busy
# moment of activation); the secondary's log has the exact moment.
logged=$(grep -m1 'failover\.activated' "$RUN/secondary.log" | cut -d' ' -f1 || true)
logged_ms=$([[ -n $logged ]] && echo $(($(date -d "$logged" +%s%3N) - T_KILL)) || echo '?')
say "secondary ACTIVE by itself, no operator action: kill -> active ${logged_ms} ms (its log), ${active_ms} ms (first ftctl status saying so)"
say "evidence in the secondary's log since the kill:"
tail -n +"$((SEC_LOG_LINES + 1))" "$RUN/secondary.log" |
  grep -E 'failover_decision|failover\.activated|witness' | head -20 | prefix "[sec log]" || true
say "and in the witness's: the lease went to the secondary, with a new term"
tail -n +"$((WITNESS_LOG_LINES + 1))" "$RUN/witness.log" |
  grep -E 'witness_grant.*holder=vm0/sec' | head -3 | prefix "[witness log]" || true
"$FTCTL" --control "$SCTL" --timeout 2 status | prefix "[ftctl sec]" || true
for _ in $(seq "$AFTER_S"); do
  sleep 1
  j=$(status_json "$SCTL") &&
    jq -r '.[0] | "[ftctl] secondary \(.state) epoch=\(.epoch) failover=\(.failover.state) term=\(.failover.term) \(.detail)"' <<<"$j"
done

# --- 9. verdict ---------------------------------------------------------------
say "stopping the client (it waits for every owed reply)"
kill -TERM "$CLIENT_PID"
client_rc=0
wait "$CLIENT_PID" || client_rc=$?
[[ -s $RUN/record.json ]] || die "the record client wrote no summary"
S=$(cat "$RUN/record.json")
say "$(jq -r '"records sent=\(.sent) received=\(.received) lost=\(.lost) duplicated=\(.duplicated) reordered=\(.reordered) server_seq_breaks=\(.server_seq_breaks)"' <<<"$S")"
gap_end=$(jq -r .longest_gap_at_unix_ms <<<"$S")
say "$(jq -r '"longest gap between replies: \(.longest_gap_ms|round) ms; reply latency p50 \(.latency_p50_ms|round) ms p99 \(.latency_p99_ms|round) ms"' <<<"$S")"
say "kill -> secondary active: $logged_ms ms; kill -> first reply from the secondary: $((gap_end - T_KILL)) ms"
ticks=$(grep -o 'ftd-tick [0-9]*' "$RUN/secondary/serial.log" | head -1 || true)
[[ -n $ticks ]] && say "guest resumed on the secondary at '$ticks' (it did not reboot)"
intact=$(jq -r '.ok == true and .lost == 0 and .duplicated == 0 and .reordered == 0' <<<"$S")
if [[ $client_rc == 0 && $intact == true ]]; then
  say "OK: the primary host died, the secondary took over by itself, the TCP stream lost nothing"
else
  die "record stream broken (client exit $client_rc): $(jq -c '{ok, lost, duplicated, reordered, error}' <<<"$S")"
fi
