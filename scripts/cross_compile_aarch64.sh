#!/usr/bin/env bash
# Compile snnkit's C++ CPU kernels for aarch64 (ARM64: NEON) with the Debian cross compiler
# g++-aarch64-linux-gnu against this Python's torch headers: proof that the one kernel source
# builds on ARM with ARM flags (no x86 flags). Compile-only: nothing is linked or run.
#
#   scripts/cross_compile_aarch64.sh            # -c: full compile, objects thrown away
#   scripts/cross_compile_aarch64.sh --syntax   # -fsyntax-only: faster, parses and checks
#
# Installs the cross compiler with apt-get when it is missing and apt is usable; without it
# (no apt, no root), prints why and exits 0 so CI elsewhere keeps going.
set -euo pipefail
cd "$(dirname "$0")/.."

CXX=aarch64-linux-gnu-g++
mode=(-c)
[[ "${1:-}" == "--syntax" ]] && mode=(-fsyntax-only)

if ! command -v "$CXX" >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    echo "cross_compile_aarch64: installing g++-aarch64-linux-gnu (apt)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        g++-aarch64-linux-gnu; } >/dev/null || true
  fi
  if ! command -v "$CXX" >/dev/null 2>&1; then
    echo "cross_compile_aarch64: skipped: $CXX is not installed and apt-get is unavailable" \
         "(apt-get install g++-aarch64-linux-gnu to run this check)"
    exit 0
  fi
fi

torch_inc=$(python -c 'from torch.utils.cpp_extension import include_paths; print(" ".join(include_paths()))' 2>/dev/null)
py_inc=$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
flags=$(python -c '
from snnkit.kernels.cpu.build import CFLAGS
print(" ".join(CFLAGS))')
csrc=snnkit/kernels/cpu/csrc
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
isystem=()
for dir in $torch_inc "$py_inc"; do isystem+=(-isystem "$dir"); done
# -march=armv8-a: every ARM64 CPU (NEON is part of it); the real build uses -mcpu=native.
status=0
for src in "$csrc"/*.cpp; do
  name=$(basename "$src" .cpp)
  if "$CXX" "${mode[@]}" -std=c++20 -fPIC -march=armv8-a $flags -DTORCH_EXTENSION_NAME=snnkit_cpu_aarch64 \
      -DTORCH_API_INCLUDE_EXTENSION_H -I"$csrc" "${isystem[@]}" "$src" -o "$out/$name.o"; then
    echo "cross_compile_aarch64: $name.cpp ok (${mode[*]}, aarch64)"
  else
    echo "cross_compile_aarch64: $name.cpp FAILED for aarch64" >&2
    status=1
  fi
done
exit "$status"
