#!/bin/sh
# /init of the ftd test guest (busybox). Never exits: PID 1 exiting panics the kernel.
# Kernel cmdline knobs (all optional), see README.md:
#   ftd.ip=A.B.C.D/NN  ftd.gw=A.B.C.D  ftd.tick=1  ftd.memload=<MiB>:<pages_per_sec>
#   ftd.bench=1|<MiB>:<passes>  ftd.disklog=1  ftd.diskload=<MiB>:<secs>  ftd.iperf=<port>
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

for m in $(cat /etc/modules.load); do
  insmod "/lib/modules/$m" || echo "ftd-init insmod $m failed"
done

knob() {  # value of "ftd.<name>=" on the kernel cmdline, empty if absent
  for w in $(cat /proc/cmdline); do
    case "$w" in "ftd.$1="*) echo "${w#ftd.$1=}"; return ;; esac
  done
}

ip link set lo up
IP=$(knob ip)
GW=$(knob gw)
if [ -n "$IP" ]; then
  # virtio-net probes asynchronously; wait for eth0 to appear.
  i=0
  while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  ip addr add "$IP" dev eth0 && ip link set eth0 up || echo "ftd-init eth0 setup failed"
  [ -n "$GW" ] && { ip route add default via "$GW" || echo "ftd-init default route failed"; }
fi

/bin/ftd-guest-svc 7000 &
if [ "$(knob tick)" = 1 ]; then /bin/ftd-guest-tick 200 & fi
ML=$(knob memload)
case "$ML" in
  "") ;;
  *:*) /bin/ftd-guest-memload "${ML%%:*}" "${ML#*:}" & ;;
  *) echo "ftd-init bad ftd.memload=$ML (want <MiB>:<pages_per_sec>)" ;;
esac
BENCH=$(knob bench)
case "$BENCH" in
  "") ;;
  1) /bin/ftd-guest-bench & ;;
  *:*) /bin/ftd-guest-bench "${BENCH%%:*}" "${BENCH#*:}" & ;;
  *) echo "ftd-init bad ftd.bench=$BENCH (want 1 or <MiB>:<passes>)" ;;
esac

if [ "$(knob disklog)" = 1 ]; then
  # The ext4 disk (virtio-blk) with the durable record log on port 7001.
  mkdir -p /mnt
  /bin/ftd-guest-disklog 7001 /dev/vda /mnt &
fi

DL=$(knob diskload)
case "$DL" in
  "") ;;
  *:*) /bin/ftd-guest-diskload /dev/vda "${DL%%:*}" "${DL#*:}" & ;;
  *) echo "ftd-init bad ftd.diskload=$DL (want <MiB>:<secs>)" ;;
esac

IPERF=$(knob iperf)
case "$IPERF" in
  "") ;;
  *[!0-9]*) echo "ftd-init bad ftd.iperf=$IPERF (want a TCP port)" ;;
  *)
    [ -x /bin/iperf3 ] || echo "ftd-init ftd.iperf needs initrd-iperf.img (no /bin/iperf3)"
    # Debian's iperf3 server, authenticated (keys from build-guest.sh). The
    # guest clock stands still while a checkpoint has the VM stopped, so it
    # falls behind the client's by the paused time: the skew limit on the
    # client's auth token (default 10 s) would refuse clients of a protected guest.
    /bin/iperf3 -s -p "$IPERF" --rsa-private-key-path /etc/iperf3/private.pem \
      --authorized-users-path /etc/iperf3/users.csv --time-skew-threshold 86400 >/dev/null &
    # READY means it listens (it takes a moment to load its libraries under TCG).
    i=0
    while ! netstat -ltn 2>/dev/null | grep -q ":$IPERF " && [ $i -lt 100 ]; do
      sleep 0.05; i=$((i + 1))
    done
    [ $i -lt 100 ] || echo "ftd-init iperf3 not listening on $IPERF"
    ;;
esac

echo "FTD-GUEST-READY ip=${IP:-none} kernel=$(uname -r)"
while :; do sleep 3600; done
