#!/usr/bin/env bash
# libFuzzer runs (fuzz/README.md). Configures a separate build (clang-19,
# -DFTD_FUZZ=ON: fuzzer coverage + ASan + UBSan), builds only the harnesses
# and runs each for a bounded time, starting from its seeds in
# fuzz/corpus/<target>/. New inputs go to <build>/fuzz-corpus/<target>/; the
# repository's corpus is only read.
#   deploy/run-fuzzers.sh [target...]   (default: every fuzz/corpus/<target>)
#   FTD_FUZZ_SECONDS=30                 per target (-max_total_time)
#   FTD_FUZZ_BUILD_DIR=<dir>            build directory (default <repo>/build-fuzz)
# Prints per target: executions, corpus size, and the crash input if any.
# Exit non-zero if the build fails or any target crashed (or leaked, hung,
# ran out of memory).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FTD_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
SECONDS_EACH=${FTD_FUZZ_SECONDS:-30}
targets=("$@")
if ((${#targets[@]} == 0)); then
  for dir in "$ROOT"/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi

CC=clang-19 CXX=clang++-19 cmake -S "$ROOT" -B "$BUILD" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFTD_FUZZ=ON >/dev/null || exit 1
ninja -C "$BUILD" -j"$(nproc)" "${targets[@]/%/_fuzzer}" || {
  echo "fuzz: FAILED: build" >&2
  exit 1
}

rc=0
for t in "${targets[@]}"; do
  corpus=$BUILD/fuzz-corpus/$t
  artifacts=$BUILD/fuzz-artifacts/$t
  log=$BUILD/fuzz-logs/$t.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  dict=()
  [[ -f $ROOT/fuzz/$t.dict ]] && dict=(-dict="$ROOT/fuzz/$t.dict")
  # The first corpus directory is the one libFuzzer writes to.
  "$BUILD/fuzz/${t}_fuzzer" "$corpus" "$ROOT/fuzz/corpus/$t" "${dict[@]}" \
    -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log" | tail -1)
  corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | sed 's/corp: //')
  crash=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
  if ((status == 0)) && [[ -z $crash ]]; then
    echo "fuzz: $t: ${runs:-?} executions in ${SECONDS_EACH} s, corpus ${corp:-?} (inputs/bytes), no crash"
  else
    rc=1
    echo "fuzz: $t: CRASH (exit $status) after ${runs:-?} executions: input ${crash:-(none written)}, log $log" >&2
    grep -E '^(SUMMARY|==[0-9]+== ?ERROR|FUZZ_CHECK)|runtime error|terminate called|what\(\)' "$log" | head -5 >&2
  fi
done
exit $rc
