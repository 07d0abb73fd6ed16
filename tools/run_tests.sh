#!/usr/bin/env bash
# Runs every test with Bazel and ends with one line "N passed, N failed",
# counting GoogleTest test cases (not Bazel targets). A target that failed to
# build, crashed, or timed out without a report counts as one failed test.
#
# Usage: tools/run_tests.sh [TARGETS...] [bazel flags...]
#   (tools/simctl test calls it). Arguments starting with "-" are bazel
#   flags, the others target patterns; no targets means //... (every test).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

flags=()
targets=()
for arg in "$@"; do
  case "$arg" in -//*) targets+=("$arg") ;; -*) flags+=("$arg") ;; *) targets+=("$arg") ;; esac
done
[ "${#targets[@]}" -gt 0 ] || targets=(//...)

echo "simctl: bazel test ${targets[*]} ${flags[*]}"
# Show what matters (failures, errors), keep everything in $log. The filter
# always succeeds, so PIPESTATUS[0] is Bazel's own exit status. "--" keeps a
# negative pattern (-//x:y) a target, not a flag.
bazel test --build_tests_only --test_summary=short "${flags[@]}" -- "${targets[@]}" 2>&1 | tee "$log" |
  { grep -vE '^\s*$|^INFO:|^Loading|^Analyzing|^//.*(PASSED|cached)' || true; }
bazel_status=${PIPESTATUS[0]}

# `bazel info` takes the flags (they pick the output tree) but no targets.
testlogs="$(bazel info "${flags[@]}" bazel-testlogs 2>/dev/null)"
passed=0
failed=0

# Sums tests/failures/errors/disabled/skipped over every test.xml of a target
# (one per shard) and prints "passed failed", or nothing if there is no XML.
count_cases() {
  local dir="$1"
  [ -d "$dir" ] || return 0
  local files
  files=$(find "$dir" -name test.xml 2>/dev/null)
  [ -n "$files" ] || return 0
  # The first <testsuites ...> element of each file carries the totals.
  echo "$files" | while read -r f; do
    grep -m1 -o '<testsuites[^>]*>' "$f" || true
  done | awk '
    function attr(s, name,   m) {
      if (match(s, name "=\"[0-9]+\"")) { m = substr(s, RSTART, RLENGTH); gsub(/[^0-9]/, "", m); return m + 0 }
      return 0
    }
    { t += attr($0, "tests"); f += attr($0, "failures") + attr($0, "errors");
      s += attr($0, "disabled") + attr($0, "skipped") }
    END { if (NR > 0) print (t - f - s), f }'
}

while read -r target status; do
  pkg="${target#//}"
  dir="$testlogs/${pkg/://}"
  read -r p f <<< "$(count_cases "$dir")"
  case "$status" in
    PASSED*)
      passed=$((passed + ${p:-1}))
      ;;
    FAILED*|TIMEOUT*|FLAKY*|INCOMPLETE*|REMOTE*|NO*)
      # A stale report from an earlier run must not count: trust the XML only
      # when it records failures (a crash or timeout leaves none).
      if [ "${f:-0}" -gt 0 ]; then
        passed=$((passed + ${p:-0})); failed=$((failed + f))
      else
        failed=$((failed + 1))
      fi
      ;;
  esac
done < <(grep -E '^//[^ ]+ +(\(cached\) +)?[A-Z]' "$log" | sed -E 's/\(cached\) +//' | awk '{print $1, $2}')

# Targets that did not build never reach the summary with a status line.
build_failures=$(grep -cE '^//[^ ]+ +FAILED TO BUILD|^ERROR: .*Compiling|^ERROR: .*Linking' "$log" || true)
if [ "$bazel_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=$((build_failures > 0 ? build_failures : 1))
fi

echo "$passed passed, $failed failed"
[ "$bazel_status" -eq 0 ] && [ "$failed" -eq 0 ]
