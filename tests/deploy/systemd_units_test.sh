#!/usr/bin/env bash
# systemd-analyze verify on deploy/systemd's units, pointed at the built
# binaries (the installed paths are checked by package_install_test.sh), and
# the settings the docs promise. Usage: systemd_units_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
SRC=$1 BUILD=$2
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (apt-get install systemd)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s#/usr/bin/ftd #$BUILD/daemon/ftd #" "$SRC/deploy/systemd/ftd@.service" >"$work/ftd@web1.service"
sed "s#/usr/bin/ftd-witness #$BUILD/witness/ftd-witness #" "$SRC/deploy/systemd/ftd-witness.service" \
  >"$work/ftd-witness.service"
# Any warning (unknown key, bad value, missing binary) fails the test.
out=$(systemd-analyze verify --man=no "$work/ftd@web1.service" "$work/ftd-witness.service" 2>&1) || {
  echo "$out"
  exit 1
}
[[ -z $out ]] || { echo "systemd-analyze verify warned: $out"; exit 1; }
for key in Type=notify Restart=on-failure KillMode=mixed "ExecStart=/usr/bin/ftd --config /etc/ftd/%i.conf"; do
  grep -q "^$key" "$SRC/deploy/systemd/ftd@.service" || { echo "ftd@.service lacks $key"; exit 1; }
done
for key in Type=notify Restart=on-failure StateDirectory=ftd-witness; do
  grep -q "^$key" "$SRC/deploy/systemd/ftd-witness.service" || { echo "ftd-witness.service lacks $key"; exit 1; }
done
echo "systemd units: verified"
