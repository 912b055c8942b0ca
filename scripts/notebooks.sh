#!/usr/bin/env bash
# scripts/notebooks.sh: runs compiled notebooks and renders them into docs/notebooks/
# (`make notebooks` builds them first and then calls this; see notebooks-cpp/README.md).
#
#   scripts/notebooks.sh BUILD NAME...      e.g. scripts/notebooks.sh build 01-tensors
#
# For each NAME: runs BUILD/notebooks/NAME/notebook from the repository root with
# NB_MARKERS=1 (cell markers on) and NB_OUT=docs/notebooks/NAME (its pictures go
# there, the folder emptied first), keeps what it printed in
# BUILD/notebooks/NAME/output.txt, prints the run's wall time (loudly when over the
# 120-second budget), and renders docs/notebooks/NAME.md and .html (BUILD/nb_render).
# Then the index, and every page in docs/notebooks/ through scripts/check-html.sh
# (headless Chromium: every picture decodes, every local link resolves). With
# SCREENSHOTS=1 the checker's screenshots are kept in BUILD/notebooks/screenshots/.
#
# Exits 1 when a notebook exits non-zero (its output is shown) or a page fails the check.
set -euo pipefail

BUDGET_S=120
if [ $# -lt 2 ]; then sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; fi
build="$1"
shift
cd "$(dirname "${BASH_SOURCE[0]}")/.."
docs=docs/notebooks
render="$build/nb_render"
[ -x "$render" ] || { echo "notebooks: $render not built (make $render)" >&2; exit 2; }
mkdir -p "$docs"

say() { echo "notebooks: $*"; }
now() { date +%s.%N; }

slow=()
for name in "$@"; do
  bin="$build/notebooks/$name/notebook"
  log="$build/notebooks/$name/output.txt"
  [ -x "$bin" ] || { say "$bin not built (make $bin)" >&2; exit 2; }
  rm -rf -- "${docs:?}/$name"  # pictures of an older run would linger
  mkdir -p "$docs/$name"
  say "$name: running"
  start=$(now)
  rc=0
  # OMP_WAIT_POLICY=passive: idle OpenMP threads sleep instead of spinning, which on a
  # busy machine made a notebook 10x slower (OpenMP reads it at start, so it is set here).
  NB_MARKERS=1 NB_OUT="$docs/$name" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}" "$bin" > "$log" 2>&1 || rc=$?
  wall=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
  if [ "$rc" -ne 0 ]; then
    say "$name: FAILED: exit status $rc after $wall s. What it printed:" >&2
    grep -v '^@@nb-cell [0-9]*@@$' "$log" | sed 's/^/  | /' >&2 || true
    exit 1
  fi
  "$render" render "notebooks-cpp/$name.cpp" "$log" "$wall" "$docs"
  say "$name: ran in $wall s -> $docs/$name.md, $docs/$name.html"
  if awk -v w="$wall" -v b="$BUDGET_S" 'BEGIN { exit !(w > b) }'; then
    slow+=("$name ($wall s)")
    echo "notebooks: ########################################################################" >&2
    echo "notebooks: WARNING: $name took $wall s, over the $BUDGET_S s budget of a notebook" >&2
    echo "notebooks: ########################################################################" >&2
  fi
done

"$render" index "$docs"
say "index: $docs/index.md, $docs/index.html"

pages=("$docs"/index.html "$docs"/[0-9][0-9]-*.html)
checked=0
if [ "${SCREENSHOTS:-}" = 1 ]; then
  bash scripts/check-html.sh "${pages[@]}" || checked=$?
  mkdir -p "$build/notebooks/screenshots"  # out of docs/: screenshots are not committed
  for shot in "$docs"/*.screenshot.png; do
    if [ -e "$shot" ]; then mv -f -- "$shot" "$build/notebooks/screenshots/"; fi
  done
  say "screenshots: $build/notebooks/screenshots/"
else
  bash scripts/check-html.sh --no-screenshot "${pages[@]}" || checked=$?
fi
if [ "$checked" -ne 0 ]; then say "FAILED: a page in $docs does not render (above)" >&2; exit 1; fi

if [ ${#slow[@]} -gt 0 ]; then
  say "WARNING: over the $BUDGET_S s budget: ${slow[*]}" >&2
fi
say "done: $# notebook(s) rendered; open $docs/index.html"
