#!/usr/bin/env bash
# Installs what simsched needs to build and test, from Debian's packages only.
# Quiet when everything is already there. Safe to run again.
#
# Usage: tools/setup.sh            (as root, or as a user with sudo)
set -euo pipefail

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
[ ${#missing[@]} -eq 0 ] && exit 0

echo "simsched setup: installing missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
  echo "simsched setup: not root, using sudo"
else
  echo "simsched setup: need root or sudo to run apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "simsched setup: apt-get update"
"${SUDO[@]}" apt-get update -qq
echo "simsched setup: apt-get install ${missing[*]}"
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "simsched setup: done"
