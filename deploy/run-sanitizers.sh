#!/usr/bin/env bash
# Sanitizer runs (not part of the default test command: a build each, and the
# instrumented suites run several times slower). Builds into build-asan
# (ASan+UBSan) and/or build-tsan (TSan) and runs the `unit` label there.
#   deploy/run-sanitizers.sh [address] [thread]     (default: both)
# Exit non-zero if a build or a suite fails; sanitizer reports are in
# <build>/Testing/Temporary/LastTest.log.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kinds=("$@")
((${#kinds[@]})) || kinds=(address thread)
rc=0
for kind in "${kinds[@]}"; do
  case $kind in
    address) dir=$ROOT/build-asan ;;
    thread) dir=$ROOT/build-tsan ;;
    *) echo "usage: $0 [address] [thread]" >&2; exit 2 ;;
  esac
  start=$(date +%s)
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Instrumented builds are long (~45 min on 2 shared cores): nice keeps the
  # machine usable. Timeouts stretch by themselves (tests/CMakeLists.txt).
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFTD_SANITIZE="$kind" "${launcher[@]}" >/dev/null || exit 1
  nice ninja -C "$dir" -j"$(nproc)" || { echo "sanitizers: $kind build failed" >&2; rc=1; continue; }
  echo "sanitizers: $kind built in $(($(date +%s) - start)) s"
  # Leak reports from gRPC's process-lifetime singletons are not ours.
  if ! (cd "$dir" && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
        TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1" \
        ctest --output-on-failure -L unit -j2); then
    echo "sanitizers: $kind: unit suites FAILED" >&2
    rc=1
  fi
  echo "sanitizers: $kind done in $(($(date +%s) - start)) s"
done
exit $rc
