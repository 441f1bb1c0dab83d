#!/usr/bin/env bash
# Installs the Debian 12 packages ftd needs to build, test and run (as root).
# Only what is missing is installed; set FTD_NO_APT=1 to skip entirely.
set -euo pipefail

PACKAGES=(build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev libboost-system-dev libssl-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libxxhash-dev libzstd-dev liblz4-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  openssl qemu-system-x86 busybox-static iproute2 iputils-ping cpio kmod jq
  clang-19 libclang-rt-19-dev
  libnbd-dev e2fsprogs qemu-utils
  libsystemd-dev systemd dpkg-dev help2man resource-agents pacemaker pacemaker-cli-utils python3 debootstrap
  libquorum-dev libvotequorum-dev corosync corosync-qdevice corosync-qnetd nftables util-linux
  chromium python3-prometheus-client curl iperf3
  libvirt-dev libxml2-dev libvirt-daemon libvirt-daemon-driver-qemu)

[[ -n ${FTD_NO_APT:-} ]] && exit 0
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
if [[ $(id -u) != 0 ]]; then
  echo "install-deps: missing packages (${missing[*]}) and not root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
