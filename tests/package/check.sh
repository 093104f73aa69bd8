#!/usr/bin/env bash
# Installs goro from a build directory into a scratch prefix, then builds
# examples/hello.cpp against it twice, as users outside this tree would: with
# pkg-config (Meson, Make, Bazel) and with CMake's find_package. Runs both.
# Then, as root with apt-get (CI), the same from the Debian package (cpack -G DEB)
# installed with apt-get, and removes it again.
# Usage: tests/package/check.sh <build-dir>
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "$1" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
prefix="$scratch/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
pcdir="$(dirname "$(find "$prefix" -name goro.pc)")"

echo "-- pkg-config: $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs goro)"
# shellcheck disable=SC2046
g++ -O2 "$root/examples/hello.cpp" -o "$scratch/hello-pc" \
  $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs goro)
"$scratch/hello-pc" | grep -q "all workers done"

cmake -S "$root/tests/package" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
"$scratch/consumer/hello" | grep -q "all workers done"
if grep -rq "$build\|/usr/lib/x86_64-linux-gnu/libdw" "$prefix/lib"*/cmake/goro/; then
  echo "installed CMake package names build-machine paths:" >&2
  grep -rn "$build\|libdw.so" "$prefix/lib"*/cmake/goro/ >&2
  exit 1
fi
echo "-- package check: pkg-config and find_package consumers built and ran"

if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "-- Debian package check skipped (needs root and apt-get)"
  exit 0
fi
(cd "$build" && cpack -G DEB >/dev/null)
deb="$(ls "$build"/goro_*.deb | head -n1)"
if dpkg -s goro >/dev/null 2>&1; then
  echo "a goro package is installed already; not touching it" >&2
  exit 1
fi
trap 'apt-get remove -y goro >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y "$deb" >/dev/null
# shellcheck disable=SC2046
g++ -O2 "$root/examples/hello.cpp" -o "$scratch/hello-deb-pc" $(pkg-config --cflags --libs goro)
"$scratch/hello-deb-pc" | grep -q "all workers done"
cmake -S "$root/tests/package" -B "$scratch/consumer-deb" >/dev/null
cmake --build "$scratch/consumer-deb" >/dev/null
"$scratch/consumer-deb/hello" | grep -q "all workers done"
echo "-- Debian package: $(basename "$deb") installed with apt-get; both consumers built and ran"
