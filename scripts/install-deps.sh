#!/usr/bin/env bash
# Installs what tinydiffusion needs from Debian's packages. Idempotent: when every
# package is already there it only says so. Uses sudo when not run as root.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also PyTorch and OpenBLAS, to benchmark against
#   scripts/install-deps.sh --html   also headless Chromium, for scripts/check-html.sh
#   scripts/install-deps.sh --fuzz   also clang and libFuzzer, for `make fuzz` (tests/fuzz/)
#   scripts/install-deps.sh --format also clang-format, for scripts/check-format.sh
#   scripts/install-deps.sh --mpi    also Open MPI, for data-parallel training (docs/distributed.md);
#                                    then `make clean && make` builds it in
#   scripts/install-deps.sh --examples  also CMake, to build examples/ against an installed copy
#                                    (scripts/check-install.sh)
# Off Debian (no dpkg) it installs nothing: it checks that the compiler finds what the build
# needs and says what is missing. `make DEPS=0` skips this script altogether.
set -euo pipefail

# graphviz: `dot` renders the autograd graphs of `diffuse trace --graph` (and its test).
# pkg-config: how the Makefile finds Eigen (and MPI), and how programs find an installed tinydiffusion.
# libmd4c-dev, libmd4c-html0-dev: md4c, the Markdown parser and HTML writer of the notebook
# renderer (make notebooks, make test).
packages=(g++ make pkg-config libeigen3-dev doctest-dev libstb-dev zlib1g-dev gdb graphviz libmd4c-dev libmd4c-html0-dev)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(python3-torch python3-numpy libopenblas0-pthread time) ;;
    # One known font, so that screenshots of a page look the same on every machine.
    --html) packages+=(chromium fonts-dejavu-core) ;;
    # clang: Debian's default clang (clang-14 on Debian 12). libFuzzer and the sanitizer
    # runtimes are in libclang-rt-N-dev, which clang only recommends (and we install
    # without recommends): libclang-rt-dev pulls in the one matching the default clang.
    --fuzz) packages+=(clang libclang-rt-dev) ;;
    --format) packages+=(clang-format) ;;
    # Debian's Open MPI: mpirun (openmpi-bin), the headers and libmpi (libopenmpi-dev),
    # which the Makefile finds through pkg-config (mpi-c.pc).
    --mpi) packages+=(openmpi-bin libopenmpi-dev pkg-config) ;;
    --examples) packages+=(cmake pkg-config) ;;
    *) echo "install-deps.sh: unknown option '$arg' (known: --bench, --html, --fuzz, --format, --mpi, --examples)" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  # Another system: its packages have other names, so ask the compiler instead.
  eigen=$(pkg-config --cflags eigen3 2>/dev/null || echo -I/usr/include/eigen3)
  # (doctest's own main: its header alone leaves symbols for a test binary to define)
  probe='#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <Eigen/Core>
#include <doctest/doctest.h>
#include <stb/stb_image.h>
#include <zlib.h>
#include <md4c-html.h>
static const char* zlib = zlibVersion();'
  # shellcheck disable=SC2086  # (the flags are words)
  if echo "$probe" | "${CXX:-g++}" -std=c++20 -fopenmp $eigen -x c++ - -o /dev/null -lz -lmd4c-html -lmd4c 2>/dev/null; then
    echo "deps: no dpkg here; the compiler finds Eigen, doctest, stb, zlib, md4c and OpenMP (optional extras are not checked)"
    exit 0
  fi
  echo "deps: no dpkg here, and ${CXX:-g++} cannot build a program with Eigen 3, doctest, stb (<stb/stb_image.h>), md4c," >&2
  echo "      zlib and OpenMP: install them with your package manager (then \`make DEPS=0\` skips this check)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present (${packages[*]})"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
