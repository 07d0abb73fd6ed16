#!/usr/bin/env bash
# Installs what simsched needs to build and test, from Debian's packages only.
# Quiet when everything is already there. Safe to run again.
#
# Usage: tools/setup.sh                  (as root, or as a user with sudo)
#        tools/setup.sh --with-chromium  also Debian's chromium, for the test that
#                                        renders `simctl report` headless
#                                        (best effort: without it that test skips)
set -euo pipefail

with_chromium=0
[ "${1:-}" = --with-chromium ] && with_chromium=1

# Build: Bazel 4 (WORKSPACE mode) plus the two rule sets it would otherwise
# download; compilers; pkg-config (the WORKSPACE maps libraries through it);
# CMake, make and ccache for the CMake build (tools/cmake_check.sh); python3 for
# //tools:build_drift_test.
# Libraries: GoogleTest/GoogleMock, Abseil, spdlog (+ fmt), Google Benchmark,
# and Boost headers (Asio, for the thread-pool comparison benchmark).
PACKAGES=(
  bazel-bootstrap bazel-rules-java bazel-platforms
  g++ clang pkg-config cmake make ccache python3
  libgtest-dev libgmock-dev libabsl-dev libspdlog-dev libfmt-dev
  libbenchmark-dev libboost-dev
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
want_chromium=0
if [ "$with_chromium" -eq 1 ] && ! command -v chromium >/dev/null 2>&1; then
  want_chromium=1
fi
[ ${#missing[@]} -eq 0 ] && [ "$want_chromium" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
  echo "simsched setup: not root, using sudo"
else
  if [ ${#missing[@]} -eq 0 ]; then
    echo "simsched setup: no root or sudo to install chromium; the HTML report's" \
         "rendering test will be skipped" >&2
    exit 0
  fi
  echo "simsched setup: need root or sudo to run apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "simsched setup: apt-get update"
"${SUDO[@]}" apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "simsched setup: installing missing Debian packages: ${missing[*]}"
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$want_chromium" -eq 1 ]; then
  # Only //tools:simctl_timeline_test uses it (a headless screenshot of the
  # HTML report); if it cannot be installed, that test skips and says why.
  echo "simsched setup: apt-get install chromium (for the HTML report's rendering test)"
  if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    echo "simsched setup: chromium could not be installed; the HTML report's rendering" \
         "test will be skipped" >&2
  fi
fi
echo "simsched setup: done"
