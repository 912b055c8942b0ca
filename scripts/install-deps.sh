#!/usr/bin/env bash
# Installs what tinydiffusion needs from Debian's packages. Idempotent: when every
# package is already there it only says so. Uses sudo when not run as root.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also PyTorch and OpenBLAS, to benchmark against
#   scripts/install-deps.sh --html   also headless Chromium, for scripts/check-html.sh
#   scripts/install-deps.sh --fuzz   also clang and libFuzzer, for `make fuzz` (tests/fuzz/)
#   scripts/install-deps.sh --mpi    also Open MPI, for data-parallel training (docs/distributed.md);
#                                    then `make clean && make` builds it in
set -euo pipefail

# graphviz: `dot` renders the autograd graphs of `diffuse trace --graph` (and its test).
packages=(g++ make libeigen3-dev doctest-dev libstb-dev zlib1g-dev gdb graphviz)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(python3-torch python3-numpy libopenblas0-pthread time) ;;
    # One known font, so that screenshots of a page look the same on every machine.
    --html) packages+=(chromium fonts-dejavu-core) ;;
    # clang: Debian's default clang (clang-14 on Debian 12). libFuzzer and the sanitizer
    # runtimes are in libclang-rt-N-dev, which clang only recommends (and we install
    # without recommends): libclang-rt-dev pulls in the one matching the default clang.
    --fuzz) packages+=(clang libclang-rt-dev) ;;
    # Debian's Open MPI: mpirun (openmpi-bin), the headers and libmpi (libopenmpi-dev),
    # which the Makefile finds through pkg-config (mpi-c.pc).
    --mpi) packages+=(openmpi-bin libopenmpi-dev pkg-config) ;;
    *) echo "install-deps.sh: unknown option '$arg' (known: --bench, --html, --fuzz, --mpi)" >&2; exit 2 ;;
  esac
done

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
