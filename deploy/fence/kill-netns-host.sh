#!/usr/bin/env bash
# Example ftd fencing command (STONITH for test hosts): "powers off" a host
# that is a network namespace by SIGKILLing every process in it and taking
# all its links down. ftd runs it before activating, with the peer's name as
# the last argument (and FTD_PEER / FTD_VM / FTD_PEER_ADDRESS in the env);
# here the peer's name is the namespace's name. Exit 0 only once verified:
# no process left in the namespace and no link up.
#   ftd ... --fence-command "/usr/lib/ftd/fence/kill-netns-host.sh" --fence-timeout-ms 5000
set -euo pipefail

ns=${1:-${FTD_PEER:-}}
if [[ -z $ns ]]; then
  echo "usage: $0 <netns-name>   (or FTD_PEER set)" >&2
  exit 2
fi
if ! ip netns list | awk '{print $1}' | grep -qx -- "$ns"; then
  # An absent namespace is a host that is already off.
  echo "fence: namespace $ns does not exist: host is off"
  exit 0
fi

# Links first: whatever survives a moment longer cannot talk anymore.
for link in $(ip -n "$ns" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
  [[ $link == lo ]] && continue
  ip -n "$ns" link set dev "$link" down
done

# Kill until nothing is left (processes may fork while we kill).
for _ in $(seq 1 50); do
  pids=$(ip netns pids "$ns")
  [[ -z $pids ]] && break
  kill -9 $pids 2>/dev/null || true
  sleep 0.02
done

left=$(ip netns pids "$ns")
up=$(ip -n "$ns" -o link show up | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -vx lo || true)
if [[ -n $left || -n $up ]]; then
  echo "fence: $ns not dead: pids [${left}] links up [${up}]" >&2
  exit 1
fi
echo "fence: $ns powered off (no processes, links down)"
