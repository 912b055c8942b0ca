#!/usr/bin/env bash
# The library as a user of it sees it: builds a tree with plain `make` (which must give
# build/diffuse), installs it into a fresh temporary prefix, checks the pkg-config file,
# builds examples/ against the installed copy twice (pkg-config, then CMake's
# find_package) from a folder outside the tree, and runs examples/custom_layer.
#
#   bash scripts/check-install.sh [TREE]     TREE: this repository (default) or a fresh clone of it
#
# .ci/run gives it a fresh clone. Needs pkg-config and cmake (scripts/install-deps.sh --examples).
set -euo pipefail
tree=$(cd "${1:-$(dirname "$0")/..}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

echo "== check-install: plain \`make\` in $tree"
make -C "$tree" --no-print-directory
[ -x "$tree/build/diffuse" ] || { echo "check-install: plain make built no build/diffuse" >&2; exit 1; }

echo "== check-install: make install PREFIX=$prefix"
make -C "$tree" --no-print-directory install PREFIX="$prefix"
"$prefix/bin/diffuse" --version
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
echo "pkg-config --modversion tinydiffusion: $(pkg-config --modversion tinydiffusion)"
echo "pkg-config --cflags --libs tinydiffusion: $(pkg-config --cflags --libs tinydiffusion)"

# (a copy outside the tree: nothing can come from the repository's own headers)
echo "== check-install: examples/ with pkg-config"
cp -r "$tree/examples" "$work/with-pkg-config"
make -C "$work/with-pkg-config" --no-print-directory -j"$(nproc)"

echo "== check-install: examples/ with CMake (find_package(tinydiffusion))"
cp -r "$tree/examples" "$work/with-cmake"
cmake -S "$work/with-cmake" -B "$work/with-cmake/build" -DCMAKE_PREFIX_PATH="$prefix" > "$work/cmake.log" ||
  { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/with-cmake/build" -j"$(nproc)"

echo "== check-install: run examples/custom_layer (both builds)"
"$work/with-pkg-config/custom_layer"
"$work/with-cmake/build/custom_layer" > /dev/null
echo "check-install: ok"
