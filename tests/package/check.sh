#!/usr/bin/env bash
# Installs goro from a build directory into a scratch prefix, then builds
# examples/hello.cpp against it twice, as users outside this tree would: with
# pkg-config (Meson, Make, Bazel) and with CMake's find_package. Runs both.
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
