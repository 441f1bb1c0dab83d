#!/usr/bin/env bash
# The test command (README, .ci/run): installs dependencies, builds ftd and the
# test guest, then runs every test. Unit/system suites run two at a time; the
# `e2e` suites (real QEMU guests under TCG) run one at a time after them.
# Between the two, every libFuzzer harness runs briefly (deploy/run-fuzzers.sh).
#   FTD_BUILD_DIR=<dir>   build directory (default <repo>/build)
#   FTD_TEST_LABEL=unit   run only one label (unit, deploy, fuzz or e2e)
# `deploy` (after unit): the OCF agent under ocf-tester and the .deb built and
# installed into an overlay root. Not run here: `package-clean-root` (the .deb
# in a debootstrap root; needs the Debian registry, docs/testing.md).
#   FTD_SKIP_FUZZ=1       no fuzzing; FTD_FUZZ_SECONDS per target (default 20 here)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FTD_BUILD_DIR:-$ROOT/build}
start=$(date +%s)

"$ROOT/deploy/install-deps.sh" || exit 1
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo || exit 1
ninja -C "$BUILD" -j"$(nproc)" || exit 1
echo "run-tests: built in $(($(date +%s) - start)) s"

# Lock discipline: every production target built with clang's thread-safety
# analysis as errors (GCC has no such check).
CLANG_BUILD=${FTD_CLANG_BUILD_DIR:-$ROOT/build-clang}
if [[ -z ${FTD_SKIP_THREAD_SAFETY:-} ]]; then
  CC=clang-19 CXX=clang++-19 cmake -S "$ROOT" -B "$CLANG_BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=Debug -DFTD_THREAD_SAFETY=ON >/dev/null || exit 1
  ninja -C "$CLANG_BUILD" -j"$(nproc)" ftd ftctl core_bench ftd-witness ftd-arbiter-probe || {
    echo "run-tests: FAILED: clang -Wthread-safety build" >&2
    exit 1
  }
  echo "run-tests: thread-safety build passed at $(($(date +%s) - start)) s"
fi

cd "$BUILD" || exit 1
rc=0
if [[ -z ${FTD_TEST_LABEL:-} || ${FTD_TEST_LABEL} == unit ]]; then
  ctest --output-on-failure -L unit -j2 || rc=1
fi
if [[ -z ${FTD_TEST_LABEL:-} || ${FTD_TEST_LABEL} == deploy ]]; then
  ctest --output-on-failure -L deploy -j2 || rc=1
  echo "run-tests: deploy tests done at $(($(date +%s) - start)) s"
fi
# Fuzzing, bounded: its own clang build (fuzzer + ASan + UBSan, harnesses only),
# then each target for a few seconds from the seed corpus.
if [[ -z ${FTD_SKIP_FUZZ:-} && (-z ${FTD_TEST_LABEL:-} || ${FTD_TEST_LABEL} == fuzz) ]]; then
  FTD_FUZZ_SECONDS=${FTD_FUZZ_SECONDS:-20} "$ROOT/deploy/run-fuzzers.sh" || {
    echo "run-tests: FAILED: fuzzing (crash inputs above)" >&2
    rc=1
  }
  echo "run-tests: fuzzing done at $(($(date +%s) - start)) s"
fi
if [[ -z ${FTD_TEST_LABEL:-} || ${FTD_TEST_LABEL} == e2e ]]; then
  ctest --output-on-failure -L e2e || rc=1
fi
echo "run-tests: $([[ $rc == 0 ]] && echo PASSED || echo FAILED) in $(($(date +%s) - start)) s"
exit $rc
