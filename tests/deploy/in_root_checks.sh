#!/bin/bash
# Runs inside a root where ftd is not installed (package_install_test.sh,
# package_debootstrap_test.sh): installs the .deb with apt, checks what an
# operator gets, removes it. Usage: in_root_checks.sh DEB VERSION [apt options]
set -euo pipefail
deb=$1 version=$2
shift 2
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
fail() { echo "FAILED: $*" >&2; exit 1; }

if dpkg-query -W -f='${Status}' ftd 2>/dev/null | grep -q 'install ok installed'; then
  dpkg --purge ftd >/dev/null  # installed on this machine by hand: start clean
fi
! command -v ftd >/dev/null || fail "ftd is already on PATH before the install: $(command -v ftd)"

apt-get install -y -q "$@" "$deb" >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; fail "apt-get install $deb"; }
echo "in root: apt-get install ./$(basename "$deb") done"

for bin in ftd ftctl ftd-witness; do
  [[ $(command -v $bin) == /usr/bin/$bin ]] || fail "$bin not installed in /usr/bin"
  out=$($bin --version) || fail "$bin --version exited $?"
  [[ $out == "$bin $version" ]] || fail "$bin --version printed '$out'"
  echo "in root: $out"
  ! ldd /usr/bin/$bin | grep -q "not found" || fail "$bin: $(ldd /usr/bin/$bin | grep 'not found')"
  [[ -s /usr/share/man/man8/$bin.8.gz ]] || fail "no man page for $bin"
  zcat /usr/share/man/man8/$bin.8.gz | grep -q '^\.SH OPTIONS' || fail "$bin.8 does not describe the options"
done
[[ -x /usr/lib/ocf/resource.d/ftd/ftd ]] || fail "OCF agent missing"
[[ -x /usr/lib/ftd/fence/kill-netns-host.sh ]] || fail "fence script missing"
[[ -f /usr/lib/ftd/libftd_uffd_preload.so ]] || fail "uffd preload library missing"
[[ -d /etc/ftd && $(stat -c %a /etc/ftd) == 700 ]] || fail "postinst did not create /etc/ftd 0700"
for unit in ftd@.service ftd-witness.service; do
  [[ -f /usr/lib/systemd/system/$unit ]] || fail "$unit missing"
done
if command -v systemd-analyze >/dev/null; then
  mkdir -p /tmp/units
  cp /usr/lib/systemd/system/ftd@.service /tmp/units/ftd@web1.service
  cp /usr/lib/systemd/system/ftd-witness.service /tmp/units/
  out=$(systemd-analyze verify --man=no /tmp/units/ftd@web1.service /tmp/units/ftd-witness.service 2>&1) ||
    fail "systemd-analyze verify: $out"
  [[ -z $out ]] || fail "systemd-analyze verify: $out"
  echo "in root: installed units verify"
fi

# The installed agent, run by Pacemaker's own tool with each action forced on
# this node (crm_resource --force-*), the resource defined in a file CIB.
if command -v crm_resource >/dev/null; then
  port=$((20000 + RANDOM % 20000))
  mkdir -p /tmp/ocf
  cat >/etc/ftd/vmp.conf <<CONF
engine = "synthetic"
memory-mib = 16
listen = "127.0.0.1:$port"
replica-dir = "/dev/shm/ftd"
CONF
  export CIB_file=/tmp/ocf/cib.xml
  cibadmin --empty >"$CIB_file"
  node=$(uname -n)
  cibadmin --create -o nodes --xml-text "<node id=\"1\" uname=\"$node\"/>"
  cibadmin --create -o status --xml-text "<node_state id=\"1\" uname=\"$node\"/>"
  cibadmin --create -o resources --xml-text '<clone id="vmp-clone">
    <meta_attributes id="vmp-clone-meta">
      <nvpair id="vmp-clone-promotable" name="promotable" value="true"/>
      <nvpair id="vmp-clone-notify" name="notify" value="true"/></meta_attributes>
    <primitive id="vmp" class="ocf" provider="ftd" type="ftd">
      <instance_attributes id="vmp-ia">
        <nvpair id="vmp-ia-vm" name="vm" value="vmp"/>
        <nvpair id="vmp-ia-cold" name="allow_cold_boot" value="true"/>
      </instance_attributes></primitive></clone>'
  # Whatever happens below, the daemon the agent started does not outlive the test.
  trap 'crm_resource --resource vmp --force-stop >/dev/null 2>&1 || true' EXIT
  crm_resource --show-metadata ocf:ftd:ftd | grep -q '<parameter name="vm"' || fail "crm_resource cannot read the agent's metadata"
  expect() { # expect RC ACTION
    set +e
    crm_resource --resource vmp "--force-$2" >/tmp/ocf/$2.out 2>&1
    rc=$?
    set -e
    [[ $rc == "$1" ]] || { cat /tmp/ocf/$2.out /var/log/ftd/vmp.log 2>/dev/null | tail -20; fail "crm_resource --force-$2: exit $rc, expected $1"; }
    echo "in root: crm_resource --force-$2 -> $rc"
  }
  # crm_resource maps the agent's OCF code to its own exit code: 0 ok, 7 not running, 8 promoted.
  expect 7 check
  expect 0 start
  expect 0 check
  expect 0 promote
  expect 8 check
  /usr/bin/ftctl -c unix:/run/ftd/vmp.ocf.sock status --json | grep -q '"role":"primary"' ||
    fail "ftctl on the agent's socket does not show a primary"
  expect 0 demote
  expect 0 check
  expect 0 stop
  expect 7 check
fi

apt-get remove -y -q ftd >/tmp/apt-remove.log 2>&1 || { cat /tmp/apt-remove.log; fail "apt-get remove ftd"; }
! command -v ftd >/dev/null || fail "ftd still on PATH after apt-get remove"
echo "in root: removed"
