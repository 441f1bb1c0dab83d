#!/bin/bash
# build-guest.sh <outdir>: builds the ftd test guest into <outdir>:
#   vmlinuz     Debian cloud kernel (linux-image-6.1.0-*-cloud-amd64-unsigned)
#   initrd.img  busybox-static + /init (init.sh) + static guest programs + virtio-net,
#               virtio-blk and ext4 modules
#   stamp       input hash + kernel version; a build with a matching stamp is reused as is.
# Needs: apt-get/apt-cache, dpkg, gcc + libc6-dev (static libc), busybox-static, cpio, gzip.
set -euo pipefail

die() { echo "build-guest: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 <outdir>"
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$HERE/src
PROGRAMS="ftd-guest-svc ftd-guest-tick ftd-guest-memload ftd-guest-bench ftd-guest-disklog ftd-guest-diskload"

# Inputs: this script, /init, and every guest source file. Sorted for stability.
INPUT_HASH=$( (cd "$HERE" && cat build-guest.sh init.sh && find src -type f | LC_ALL=C sort | xargs cat) \
  | sha256sum | cut -c1-16)

stamp_matches() {
  [ -f "$OUT/stamp" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] &&
    grep -qx "inputs=$INPUT_HASH" "$OUT/stamp"
}
if stamp_matches; then exit 0; fi

mkdir -p "$OUT"
# Several builds (engineers, CI jobs) may share the cache dir: one builds, the rest wait.
exec 9>"$OUT/.lock"
flock 9
if stamp_matches; then exit 0; fi
echo "build-guest: building into $OUT (inputs=$INPUT_HASH)" >&2

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ftd-guest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# --- kernel ---------------------------------------------------------------
# Newest linux-image-6.1.0-N-cloud-amd64-unsigned that apt knows about.
find_kernel_pkg() {
  apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' |
    awk '{print $1}' | sort -t- -k4,4n | tail -1
}
PKG=$(find_kernel_pkg)
if [ -z "$PKG" ]; then
  apt-get update -qq >&2 || die "apt-get update failed"
  PKG=$(find_kernel_pkg)
fi
[ -n "$PKG" ] || die "no linux-image-6.1.0-*-cloud-amd64-unsigned package known to apt"
(cd "$WORK" && apt-get download -q -o APT::Sandbox::User=root "$PKG" >&2) ||
  { apt-get update -qq >&2 && PKG=$(find_kernel_pkg) && (cd "$WORK" && apt-get download -q -o APT::Sandbox::User=root "$PKG" >&2); } ||
  die "apt-get download $PKG failed"
dpkg -x "$WORK"/linux-image-*.deb "$WORK/kernel"
KVER=$(ls "$WORK/kernel/lib/modules" | head -1)
[ -n "$KVER" ] && [ -f "$WORK/kernel/boot/vmlinuz-$KVER" ] || die "unexpected layout in $PKG"
MODDIR=$WORK/kernel/lib/modules/$KVER

# --- busybox ----------------------------------------------------------------
if [ ! -x /bin/busybox ] || ! file -L /bin/busybox | grep -q 'statically linked'; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >&2 ||
    die "cannot install busybox-static"
fi

# --- modules: virtio-net and virtio-pci plus their dependencies -----------------
# The package has no modules.dep (depmod runs at install time); make one.
busybox depmod -b "$WORK/kernel" "$KVER" || die "depmod failed"
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,etc,proc,sys,dev,tmp,lib/modules}
: >"$ROOT/etc/modules.load"
add_module() {  # add_module <name>: appends its deps (deepest first) and itself, once each
  local name=$1 path
  if grep -q "/$name\.ko" "$MODDIR/modules.builtin"; then return; fi  # built in
  path=$(grep -E "(^|/)$name\.ko(\.xz)?:" "$MODDIR/modules.dep" | cut -d: -f1)
  [ -n "$path" ] || die "module $name not found in $PKG"
  # modules.dep lists dependencies so that the last must load first.
  local deps
  deps=$(grep -E "^$path:" "$MODDIR/modules.dep" | cut -d: -f2)
  for dep in $(echo $deps | tr ' ' '\n' | tac); do
    add_module "$(basename "$dep" | sed -E 's/\.ko(\.xz)?$//')"
  done
  local base
  base=$(basename "$path")
  if grep -qx "${base%.xz}" "$ROOT/etc/modules.load"; then return; fi
  case "$path" in
    *.xz) xz -dc "$MODDIR/$path" >"$ROOT/lib/modules/${base%.xz}" ;;
    *) cp "$MODDIR/$path" "$ROOT/lib/modules/$base" ;;
  esac
  echo "${base%.xz}" >>"$ROOT/etc/modules.load"
}
add_module virtio_pci
add_module virtio_net
# The disk (ftd.disklog): virtio-blk and ext4. ext4 asks the crypto API for
# crc32c at mount time (no modules.dep edge): load the generic one first.
add_module crc32c_generic
add_module virtio_blk
add_module ext4

# --- root filesystem -----------------------------------------------------------
cp /bin/busybox "$ROOT/bin/busybox"
for app in $(/bin/busybox --list); do
  [ -e "$ROOT/bin/$app" ] || ln -s busybox "$ROOT/bin/$app"
done
for p in $PROGRAMS; do
  gcc -static -O2 -Wall -Wextra -Werror -o "$ROOT/bin/$p" "$SRC/$p.c" || die "compiling $p failed"
  strip "$ROOT/bin/$p"
done
install -m 0755 "$HERE/init.sh" "$ROOT/init"
# Uncompressed cpio: a few MB, and TCG unpacks it faster than it inflates gzip.
(cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$WORK/initrd.img"

# --- publish: files first, stamp last, so a half-written dir never matches -----
rm -f "$OUT/stamp"
cp "$WORK/kernel/boot/vmlinuz-$KVER" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
cp "$WORK/initrd.img" "$OUT/initrd.img.tmp" && mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
printf 'inputs=%s\nkernel=%s\npackage=%s\nmodules=%s\n' "$INPUT_HASH" "$KVER" "$PKG" \
  "$(tr '\n' ' ' <"$ROOT/etc/modules.load")" >"$OUT/stamp.tmp"
mv "$OUT/stamp.tmp" "$OUT/stamp"
echo "build-guest: done: $OUT ($KVER, initrd $(du -h "$OUT/initrd.img" | cut -f1))" >&2
