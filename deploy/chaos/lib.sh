# Shared by the chaos commands: runs one controlled-failure scenario of
# tests/e2e/auto_failover_test (a real protected QEMU pair, every host its own
# network namespace, ftd-witness on a third host, a client streaming TCP
# records and pings), prints the scenario's JSON line and exits 0 only if
# every expected outcome held (who runs the VM, records lost/duplicated/
# reordered = 0, never two sides releasing output).
#   FTD_BUILD_DIR=<dir>  build directory (default <repo>/build); built if needed
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${FTD_BUILD_DIR:-$ROOT/build}

run_scenario() {
  local test=$1
  if [[ $EUID -ne 0 ]]; then
    echo "chaos: needs root (network namespaces, taps)" >&2
    exit 2
  fi
  if [[ ! -x $BUILD/tests/e2e/auto_failover_test ]]; then
    echo "chaos: building auto_failover_test in $BUILD" >&2
    [[ -f $BUILD/build.ninja ]] || cmake -S "$ROOT" -B "$BUILD" -G Ninja \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2 || exit 1
    ninja -C "$BUILD" auto_failover_test >&2 || exit 1
  fi
  local log
  log=$(mktemp /tmp/ftd-chaos.XXXXXX.log)
  FTD_BUILD_DIR=$BUILD "$BUILD/tests/e2e/auto_failover_test" \
    --gtest_filter="$test" >"$log" 2>&1
  local rc=$?
  local line
  line=$(grep -m1 '^\[chaos\] ' "$log" | sed 's/^\[chaos\] //')
  [[ -z $line ]] && line='{}'
  if [[ $rc -eq 0 ]]; then
    echo "$line" | jq -c '. + {passed: true}'
  else
    echo "$line" | jq -c --arg log "$log" '. + {passed: false, log: $log}'
    grep -E "Failure|Expected|Which is|error" "$log" | head -20 >&2
  fi
  [[ $rc -eq 0 ]] && rm -f "$log"
  return $rc
}
