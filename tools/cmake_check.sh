#!/usr/bin/env bash
# The CMake build, checked end to end as a CMake user would use it:
#   1. the drift check (both builds list the same sources),
#   2. configure, build (-j2) and ctest simsched itself,
#   3. install to build-ci/prefix; build and run a small program with the
#      flags of the installed simsched.pc,
#   4. build examples/cmake-consumer against that prefix and ctest it.
# Prints one line per step and ends with "cmake: N passed, N failed" (CTest
# entries; a step that fails before its tests run counts as one failure).
# .ci/run calls it after the Bazel suite.
#
# Every run starts from an empty build-ci/ in the source tree (ignored by git
# and Bazel), where the build trees and step logs stay afterwards. Compiles go
# through ccache with a cache shared between clones, as Bazel's disk cache is
# (the build directory sits at the same place relative to the sources in
# every clone, so the cache hits).
#
# Usage: tools/cmake_check.sh
# Environment: SIMSCHED_CMAKE_JOBS (default 2); SIMSCHED_CCACHE=0 to compile
# without ccache.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/tools/setup.sh" || exit 1
JOBS="${SIMSCHED_CMAKE_JOBS:-2}"
WORK="$ROOT/build-ci"
rm -rf "$WORK"
mkdir -p "$WORK"
LAUNCHER=()
if [ "${SIMSCHED_CCACHE:-1}" != 0 ] && command -v ccache >/dev/null 2>&1; then
  export CCACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/simsched/ccache"
  export CCACHE_BASEDIR="$ROOT"
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
BUILD="$WORK/build"
PREFIX="$WORK/prefix"
CONSUMER="$WORK/consumer"

passed=0
failed=0
start=$SECONDS

finish() {
  echo "cmake: took $((SECONDS - start))s"
  echo "cmake: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

# Runs a step quietly; on failure shows the end of its log and stops.
step() {
  local name="$1" log="$WORK/$2.log"
  shift 2
  local t=$SECONDS
  if "$@" >"$log" 2>&1; then
    echo "cmake: $name ($((SECONDS - t))s)"
  else
    echo "cmake: FAILED: $name; the end of $log:"
    tail -n 40 "$log" | sed 's/^/  /'
    failed=$((failed + 1))
    finish
  fi
}

# Runs ctest in $1 and adds its counts; shows failures in full.
run_ctest() {
  local dir="$1" name="$2" log="$WORK/$3.log"
  local t=$SECONDS
  ctest --test-dir "$dir" -j"$JOBS" --output-on-failure >"$log" 2>&1
  local summary total bad
  summary="$(grep -E '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)"
  if [ -z "$summary" ]; then
    echo "cmake: FAILED: $name: ctest printed no summary; the end of $log:"
    tail -n 40 "$log" | sed 's/^/  /'
    failed=$((failed + 1))
    return
  fi
  bad="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<< "$summary")"
  total="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<< "$summary")"
  passed=$((passed + total - bad))
  failed=$((failed + bad))
  echo "cmake: $name: $((total - bad)) passed, $bad failed ($((SECONDS - t))s)"
  if [ "$bad" -ne 0 ]; then
    sed -n '/The following tests FAILED/,$p' "$log" | sed 's/^/  /'
    grep -B2 -A30 -E '\*\*\*Failed|\*\*\*Timeout|\*\*\*Exception' "$log" | head -n 200 | sed 's/^/  /'
  fi
}

echo "cmake: checking the CMake build in $WORK (-j$JOBS${LAUNCHER[*]:+, ccache})"
step "both builds list the same sources (tools/build_drift_test.py --check)" drift \
  python3 tools/build_drift_test.py --check "$ROOT"
step "configure" configure \
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_INSTALL_PREFIX="$PREFIX" "${LAUNCHER[@]}"
step "build simsched and its tests" build \
  cmake --build "$BUILD" -j"$JOBS"
run_ctest "$BUILD" "ctest (simsched's own tests)" ctest
step "install to $PREFIX" install \
  cmake --install "$BUILD"
# A pkg-config user: compile, link and run a small program with simsched.pc.
pkg_config_app() {
  export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
  pkg-config --exists --print-errors simsched simsched_testing || return 1
  cat > "$WORK/pc_app.cc" <<'CC'
#include <chrono>
#include <cstdio>
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
simsched::Co<int> Answer() {
  co_await simsched::Sleep(std::chrono::milliseconds(5));
  co_return 42;
}
int main() {
  simsched::TestScheduler scheduler({.seed = 7});
  absl::StatusOr<int> answer = scheduler.BlockOn(Answer());
  return answer.ok() && *answer == 42 ? 0 : 1;
}
CC
  # shellcheck disable=SC2046  # pkg-config output is meant to be split
  c++ -o "$WORK/pc_app" "$WORK/pc_app.cc" $(pkg-config --cflags --libs simsched) && "$WORK/pc_app"
}
step "a program built with pkg-config's simsched flags runs" pkg-config pkg_config_app
step "configure examples/cmake-consumer against the installed prefix" consumer-configure \
  cmake -S "$ROOT/examples/cmake-consumer" -B "$CONSUMER" -DCMAKE_PREFIX_PATH="$PREFIX" \
  "${LAUNCHER[@]}"
step "build the consumer" consumer-build \
  cmake --build "$CONSUMER" -j"$JOBS"
run_ctest "$CONSUMER" "ctest (the consumer's sim test, 3 shards)" consumer-ctest
finish
