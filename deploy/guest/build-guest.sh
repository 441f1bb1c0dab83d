#!/bin/bash
# build-guest.sh <outdir>: builds the ftd test guest into <outdir>:
#   vmlinuz     Debian cloud kernel (linux-image-6.1.0-*-cloud-amd64-unsigned)
#   initrd.img  busybox-static + /init (init.sh) + static guest programs + virtio-net,
#               virtio-blk and ext4 modules
#   initrd-iperf.img  initrd.img + Debian's iperf3, its shared libraries and keys (ftd.iperf)
#   iperf3-public.pem, iperf3-credentials  what an iperf3 client needs to authenticate to the
#               guest's iperf3 server (ftd.iperf knob; key pair and password made per build)
#   stamp       input hash + kernel version; a build with a matching stamp is reused as is.
# Needs: apt-get/apt-cache, dpkg, gcc + libc6-dev (static libc), busybox-static, cpio, gzip,
#   openssl, and the host's libssl3 + libsctp1 (iperf3's libraries: deploy/install-deps.sh).
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
    [ -f "$OUT/initrd-iperf.img" ] &&
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

# --- iperf3 (ftd.iperf): Debian's binary, its libraries and the dynamic loader --------
# Not rebuilt static: Debian's binary is the one a client runs against, and
# libiperf0 only ships as a shared library. The libraries ldd resolves (libiperf0
# from the downloaded package, the rest from this host: same Debian release)
# go to the same paths as on Debian, so the binary runs unchanged. They are a
# second cpio archive appended to the first (the kernel unpacks both) in
# initrd-iperf.img: ~8 MB more to load, which the guests of other tests skip.
IPERF_ROOT=$WORK/iperf-root
mkdir -p "$IPERF_ROOT/bin"
(cd "$WORK" && apt-get download -q -o APT::Sandbox::User=root iperf3 libiperf0 >&2) ||
  die "apt-get download iperf3 libiperf0 failed"
for deb in "$WORK"/iperf3_*.deb "$WORK"/libiperf0_*.deb; do dpkg -x "$deb" "$WORK/iperf"; done
IPERF_LIBS=$(LD_LIBRARY_PATH="$WORK/iperf/usr/lib/x86_64-linux-gnu" ldd "$WORK/iperf/usr/bin/iperf3") ||
  die "ldd iperf3 failed"
if grep -q 'not found' <<<"$IPERF_LIBS"; then
  die "iperf3 needs libraries this host lacks (install libssl3 libsctp1): $(grep 'not found' <<<"$IPERF_LIBS" | tr -s '\t\n' ' ')"
fi
install -m 0755 "$WORK/iperf/usr/bin/iperf3" "$IPERF_ROOT/bin/iperf3"
mkdir -p "$IPERF_ROOT/lib/x86_64-linux-gnu" "$IPERF_ROOT/lib64"
for lib in $(awk '$2 == "=>" && $3 ~ /^\// {print $3}' <<<"$IPERF_LIBS"); do
  cp -L "$lib" "$IPERF_ROOT/lib/x86_64-linux-gnu/$(basename "$lib")"
done
LOADER=$(awk '$1 ~ /^\/.*ld-linux/ {print $1}' <<<"$IPERF_LIBS")
[ -n "$LOADER" ] || die "no dynamic loader in ldd iperf3"
cp -L "$LOADER" "$IPERF_ROOT/lib64/$(basename "$LOADER")"
# iperf3's own authentication (RSA key + user/password): the server in the
# guest is on a network, so it only serves clients that have these.
mkdir -p "$IPERF_ROOT/etc/iperf3"
openssl genrsa -out "$IPERF_ROOT/etc/iperf3/private.pem" 2048 2>/dev/null || die "openssl genrsa failed"
openssl rsa -in "$IPERF_ROOT/etc/iperf3/private.pem" -pubout -out "$WORK/iperf3-public.pem" 2>/dev/null ||
  die "openssl rsa -pubout failed"
IPERF_USER=ftd
IPERF_PASSWORD=$(openssl rand -hex 16)
# iperf3's users file: <user>,sha256("{<user>}<password>")
printf '%s,%s\n' "$IPERF_USER" \
  "$(printf '{%s}%s' "$IPERF_USER" "$IPERF_PASSWORD" | sha256sum | cut -d' ' -f1)" \
  >"$IPERF_ROOT/etc/iperf3/users.csv"
printf 'user=%s\npassword=%s\n' "$IPERF_USER" "$IPERF_PASSWORD" >"$WORK/iperf3-credentials"
(cd "$IPERF_ROOT" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) |
  cat "$WORK/initrd.img" - >"$WORK/initrd-iperf.img"

# --- publish: files first, stamp last, so a half-written dir never matches -----
rm -f "$OUT/stamp"
cp "$WORK/kernel/boot/vmlinuz-$KVER" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
cp "$WORK/initrd.img" "$OUT/initrd.img.tmp" && mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
for f in initrd-iperf.img iperf3-public.pem iperf3-credentials; do
  cp "$WORK/$f" "$OUT/$f.tmp" && mv "$OUT/$f.tmp" "$OUT/$f"
done
printf 'inputs=%s\nkernel=%s\npackage=%s\nmodules=%s\n' "$INPUT_HASH" "$KVER" "$PKG" \
  "$(tr '\n' ' ' <"$ROOT/etc/modules.load")" >"$OUT/stamp.tmp"
mv "$OUT/stamp.tmp" "$OUT/stamp"
echo "build-guest: done: $OUT ($KVER, initrd $(du -h "$OUT/initrd.img" | cut -f1))" >&2
