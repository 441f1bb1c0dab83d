#!/usr/bin/env bash
# Builds the ftd .deb with cpack and installs it like an operator would
# (`apt-get install ./ftd_*.deb`) into a root where ftd is not installed: an
# overlay of this machine's / in a private mount namespace, so the host is
# never touched. Then runs the installed binaries, checks units, man pages and
# libraries, drives the installed OCF agent through crm_resource --force-*,
# and removes the package. The namespace has its own network with only
# loopback: a dependency this machine lacks fails the test instead of being
# fetched (a clean Debian root, which checks Depends too:
# package_debootstrap_test.sh).
# Usage: package_install_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
SRC=$1 BUILD=$2
work=$(mktemp -d /tmp/ftd-package-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")/\1/p' "$BUILD/CPackConfig.cmake")
echo "package: cpack -G DEB (version $version)"
start=$(date +%s)
cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 || {
  cat "$work/cpack.log"
  exit 1
}
deb=$(ls "$work"/out/ftd_"$version"_*.deb)
echo "package: built $(basename "$deb") ($(stat -c %s "$deb") bytes) in $(($(date +%s) - start)) s"
dpkg-deb -f "$deb" Depends | grep -q qemu-system-x86 || { echo "Depends lacks qemu-system-x86"; exit 1; }
dpkg-deb -f "$deb" Depends | grep -q libgrpc || { echo "Depends lacks the shlibdeps (libgrpc)"; exit 1; }

cp "$deb" "$work/"
cp "$SRC/tests/deploy/in_root_checks.sh" "$work/"
# The overlay: lower = this machine's /, upper = a tmpfs that vanishes with the
# namespace; /proc, /dev and a private /dev/shm and /tmp inside; no network.
unshare --mount --net --propagation private -- bash -euo pipefail -c '
  ip link set lo up
  work=$1 deb=$2 version=$3
  mkdir -p "$work/ovl"
  mount -t tmpfs ftd-package-test "$work/ovl"
  mkdir -p "$work/ovl/upper" "$work/ovl/work" "$work/ovl/root"
  mount -t overlay overlay -o lowerdir=/,upperdir="$work/ovl/upper",workdir="$work/ovl/work" "$work/ovl/root"
  root=$work/ovl/root
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs shm "$root/dev/shm"
  mount -t tmpfs tmp "$root/tmp"
  mkdir -p "$root/run"
  mount -t tmpfs run "$root/run"
  mkdir -p "$root/srv/pkg"
  cp "$work/$(basename "$deb")" "$work/in_root_checks.sh" "$root/srv/pkg/"
  chroot "$root" /bin/bash /srv/pkg/in_root_checks.sh "/srv/pkg/$(basename "$deb")" "$version"
' _ "$work" "$deb" "$version"
echo "package: installed, checked and removed in $(($(date +%s) - start)) s"
