#!/usr/bin/env bash
# deploy/demo.sh — ftd end to end on one machine, as root on Debian 12:
# installs what is missing, builds ftd and the test guest, protects the guest
# with a primary/secondary pair (two ftd daemons, two QEMUs) on a private
# network, streams TCP records to it from a client namespace, kills the
# primary host (QEMU + ftd, SIGKILL), fails over, and shows the SAME TCP
# connection carrying on with nothing lost. Exit status: 0 iff the record
# stream lost, duplicated and reordered nothing.
#
# Environment knobs:
#   FTD_DEMO_BUILD=<dir>    build directory (default <repo>/build)
#   FTD_DEMO_TARGETS="..."  ninja targets (default: everything)
#   FTD_DEMO_NO_APT=1       never call apt-get (same as FTD_NO_APT=1)
#   FTD_DEMO_STREAM_S=5     seconds of protected streaming before the kill
#   FTD_DEMO_AFTER_S=8      seconds of streaming after the failover
#   FTD_DEMO_EPOCH_MS=50    checkpoint interval
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FTD_DEMO_BUILD:-$ROOT/build}
STREAM_S=${FTD_DEMO_STREAM_S:-5}
AFTER_S=${FTD_DEMO_AFTER_S:-8}
EPOCH_MS=${FTD_DEMO_EPOCH_MS:-50}
GUEST_IP=10.77.0.2
GUEST_MAC=52:54:00:12:34:56

say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }
die() {
  printf '\033[1;31m[demo] FAILED:\033[0m %s\n' "$*" >&2
  exit 1
}
# Prefixes every line of a stream (for the daemons' and client's output).
prefix() { sed -u "s/^/$1 /"; }

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
CLIENT=$BUILD/tools/record_client/ftd-record-client
for f in "$FTD" "$FTCTL" "$CLIENT" "$GUEST/vmlinuz" "$GUEST/initrd.img"; do
  [[ -e $f ]] || die "missing $f after the build"
done

# --- 3. network: lan namespace (both hosts, bridge) + client namespace ---------
ID=$$
LAN=ftdlan$ID CLI=ftdcli$ID BR=ftdbr$ID
VL=ftdvl$ID VC=ftdvc$ID TAP1=ftdtp$ID TAP2=ftdts$ID
RUN=$(mktemp -d /tmp/ftd-demo-XXXXXX)
REPLICA=/dev/shm/ftd-demo-$ID
PIDS=()

cleanup() {
  local rc=$?
  set +e
  say "cleaning up"
  for pid in "${PIDS[@]}"; do
    # QEMUs first: they outlive a killed ftd.
    for task in /proc/"$pid"/task/*; do
      for child in $(cat "$task/children" 2>/dev/null); do
        [[ $(cat /proc/"$child"/comm 2>/dev/null) == qemu-system* ]] && kill -9 "$child"
      done
    done
  done
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  for pid in "${QEMUS[@]:-}"; do
    [[ -n $pid && $(cat /proc/"$pid"/comm 2>/dev/null) == qemu-system* ]] && kill -9 "$pid"
  done
  wait 2>/dev/null
  ip netns del "$CLI" 2>/dev/null
  ip netns del "$LAN" 2>/dev/null
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

say "network: namespaces $LAN (hosts) and $CLI (client), bridge $BR"
ip netns add "$LAN"
ip netns add "$CLI"
ip -n "$LAN" link set lo up
ip -n "$CLI" link set lo up
ip -n "$LAN" link add "$BR" type bridge
ip -n "$LAN" link set "$BR" up
ip -n "$LAN" link add "$VL" type veth peer name "$VC" netns "$CLI"
ip -n "$LAN" link set "$VL" master "$BR"
ip -n "$LAN" link set "$VL" up
ip -n "$CLI" addr add 10.77.0.10/24 dev "$VC"
ip -n "$CLI" link set "$VC" up
mkdir -p "$RUN/primary" "$RUN/secondary" "$REPLICA"

# --- 4. daemons ---------------------------------------------------------------
COMMON=(--vm vm0 --engine qmp --memory-mib 128 --kernel "$GUEST/vmlinuz"
  --initrd "$GUEST/initrd.img" --append "console=ttyS0 quiet ftd.ip=$GUEST_IP/24 ftd.tick=1"
  --mac "$GUEST_MAC" --bridge "$BR")
PCTL=unix:$RUN/primary.ctl
SCTL=unix:$RUN/secondary.ctl
REPL=127.0.0.1:7100 # inside $LAN: its own loopback

say "starting the secondary (prelaunches a standby QEMU on the replica file)"
ip netns exec "$LAN" "$FTD" --role secondary "${COMMON[@]}" --control "$SCTL" --listen "$REPL" \
  --tap "$TAP2" --run-dir "$RUN/secondary" --replica-dir "$REPLICA" \
  >"$RUN/secondary.log" 2>&1 &
SEC_PID=$!
PIDS+=("$SEC_PID")
status_json() { "$FTCTL" --control "$1" --timeout 2 status --json 2>/dev/null; }
field() { jq -r ".[0].$1" <<<"$2"; }
for _ in $(seq 100); do status_json "$SCTL" >/dev/null && break; sleep 0.1; done
status_json "$SCTL" >/dev/null || { tail -20 "$RUN/secondary.log"; die "secondary did not start"; }

say "starting the primary (launches the guest, then the initial sync)"
ip netns exec "$LAN" "$FTD" --role primary "${COMMON[@]}" --control "$PCTL" --peer "$REPL" \
  --tap "$TAP1" --run-dir "$RUN/primary" --epoch-ms "$EPOCH_MS" \
  >"$RUN/primary.log" 2>&1 &
PRI_PID=$!
PIDS+=("$PRI_PID")

# One line of the primary's numbers.
show_primary() {
  local j
  j=$(status_json "$PCTL") || { echo "[ftctl] primary not answering"; return; }
  jq -r '.[0] | "[ftctl] primary \(.state) epoch=\(.epoch) acked=\(.acked_epoch) sync=\(.sync_progress*100|floor)% ckpt/s=\(.checkpoints_per_sec*10|round/10) pause_p50=\(.pause_p50_us/1000)ms lag=\(.lag_ms|round)ms held=\(.output_held) released=\(.output_released) \(.detail)"' <<<"$j"
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
say "guest protected; waiting for it to finish booting"
until grep -q FTD-GUEST-READY "$RUN/primary/serial.log" 2>/dev/null; do
  ((SECONDS < deadline)) || die "guest never printed FTD-GUEST-READY"
  sleep 1
  show_primary
done
say "guest: $(grep -m1 FTD-GUEST-READY "$RUN/primary/serial.log")"

# --- 5. the client: one TCP connection, numbered records, every reply verified -
say "client: ftd-record-client $GUEST_IP:7000 at 50 records/s (namespace $CLI)"
ip netns exec "$CLI" "$CLIENT" "$GUEST_IP" --rate 50 --recv-timeout 60 --connect-timeout 30 \
  --progress 1 --json-out "$RUN/record.json" \
  > >(prefix "[client]") 2>&1 &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")
for _ in $(seq "$STREAM_S"); do sleep 1; show_primary; done

# --- 6. the primary host dies ---------------------------------------------------
QEMUS=()
for task in /proc/"$PRI_PID"/task/*; do
  for child in $(cat "$task/children" 2>/dev/null); do
    [[ $(cat /proc/"$child"/comm 2>/dev/null) == qemu-system* ]] && QEMUS+=("$child")
  done
done
((${#QEMUS[@]})) || die "found no QEMU under the primary ftd (pid $PRI_PID)"
say "KILLING THE PRIMARY HOST: kill -9 ftd $PRI_PID, QEMU ${QEMUS[*]}"
T_KILL=$(date +%s%3N)
kill -9 "$PRI_PID" "${QEMUS[@]}"
wait "$PRI_PID" 2>/dev/null || true
say "running: ftctl failover (on the secondary)"
T_FO=$(date +%s%3N)
if ! "$FTCTL" --control "$SCTL" --timeout 30 failover | prefix "[ftctl]"; then
  tail -20 "$RUN/secondary.log"
  die "failover refused"
fi
T_UP=$(date +%s%3N)
say "failover call took $((T_UP - T_FO)) ms ($((T_UP - T_KILL)) ms after the kill)"
for _ in $(seq "$AFTER_S"); do
  sleep 1
  j=$(status_json "$SCTL") &&
    jq -r '.[0] | "[ftctl] secondary \(.state) epoch=\(.epoch) \(.detail)"' <<<"$j"
done

# --- 7. verdict ---------------------------------------------------------------
say "stopping the client (it waits for every owed reply)"
kill -TERM "$CLIENT_PID"
client_rc=0
wait "$CLIENT_PID" || client_rc=$?
[[ -s $RUN/record.json ]] || die "the record client wrote no summary"
S=$(cat "$RUN/record.json")
say "$(jq -r '"records sent=\(.sent) received=\(.received) lost=\(.lost) duplicated=\(.duplicated) reordered=\(.reordered) server_seq_breaks=\(.server_seq_breaks)"' <<<"$S")"
gap_end=$(jq -r .longest_gap_at_unix_ms <<<"$S")
say "$(jq -r '"longest gap between replies: \(.longest_gap_ms|round) ms; reply latency p50 \(.latency_p50_ms|round) ms p99 \(.latency_p99_ms|round) ms"' <<<"$S")"
say "kill -> first reply from the secondary: $((gap_end - T_KILL)) ms"
ticks=$(grep -o 'ftd-tick [0-9]*' "$RUN/secondary/serial.log" | head -1 || true)
[[ -n $ticks ]] && say "guest resumed on the secondary at '$ticks' (it did not reboot)"
if [[ $client_rc == 0 && $(jq -r .ok <<<"$S") == true ]]; then
  say "OK: the TCP stream survived the primary host's death, nothing lost"
else
  die "record stream broken (client exit $client_rc): $(jq -r .error <<<"$S")"
fi
