#!/usr/bin/env bash
# The ftd .deb installed into a clean Debian 12 (bookworm) minbase root made by
# debootstrap: apt-get must find every dependency from the package's Depends
# alone (nothing of this machine's installed packages helps), then the
# binaries run. Needs the Debian registry: debootstrap's base tarball is cached
# in $FTD_PKG_CACHE (default /var/cache/ftd-pkgtest, ~45 MB, ~4 min to make
# once); each run unpacks it, runs `apt-get update` and downloads the
# dependencies (QEMU, gRPC...). Label `package-clean-root`, not in CI's run:
#   ctest --test-dir build -L package-clean-root --output-on-failure
# Usage: package_debootstrap_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
SRC=$1 BUILD=$2
CACHE=${FTD_PKG_CACHE:-/var/cache/ftd-pkgtest}
MIRROR=${FTD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
command -v debootstrap >/dev/null || { echo "debootstrap missing (apt-get install debootstrap)"; exit 1; }
work=$(mktemp -d /var/tmp/ftd-debootstrap-test.XXXXXX)
root=$work/root
cleanup() {
  for m in dev/pts dev proc; do umount -l "$root/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
start=$(date +%s)
tarball=$CACHE/bookworm-minbase.tgz
if [[ ! -s $tarball ]]; then
  mkdir -p "$CACHE"
  echo "debootstrap: making the base tarball $tarball (once)"
  debootstrap --variant=minbase --make-tarball="$tarball.tmp" bookworm "$work/tarball" "$MIRROR" \
    >"$work/make-tarball.log" 2>&1 || { tail -20 "$work/make-tarball.log"; exit 1; }
  mv "$tarball.tmp" "$tarball"
fi
debootstrap --variant=minbase --unpack-tarball="$tarball" bookworm "$root" "$MIRROR" \
  >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }
echo "debootstrap: clean bookworm root in $(($(date +%s) - start)) s"

version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")/\1/p' "$BUILD/CPackConfig.cmake")
cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 || {
  cat "$work/cpack.log"
  exit 1
}
mkdir -p "$root/srv/pkg"
cp "$work"/out/ftd_"$version"_*.deb "$SRC/tests/deploy/in_root_checks.sh" "$root/srv/pkg/"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
chroot "$root" apt-get update -q >"$work/apt-update.log" 2>&1 || { cat "$work/apt-update.log"; exit 1; }
deb=$(basename "$(ls "$work"/out/ftd_"$version"_*.deb)")
chroot "$root" /bin/bash /srv/pkg/in_root_checks.sh "/srv/pkg/$deb" "$version" --no-install-recommends
echo "debootstrap: installed in a clean root, checked and removed in $(($(date +%s) - start)) s"
