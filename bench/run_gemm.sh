#!/usr/bin/env bash
# bench/run_gemm.sh: td::matmul against torch.mm, same shapes, same machine, one table.
#
#   bash bench/run_gemm.sh [BENCH_BINARY] [--quick] [--shapes sq1024,conv64]
#   make bench                      (= bash bench/run_gemm.sh build/bench_gemm)
#
# Environment: ROUNDS (default 3): ours and torch run alternately, ROUNDS times each;
#              PYTHON (default /usr/bin/python3, Debian's, which has python3-torch);
#              WAIT_IDLE (default 60): seconds to wait for a busy machine to go idle first.
# Each round prints, per shape, the median of its timed calls; the table shows for each
# side the best round (another process on the machine can only slow a round down, so the
# fastest round is the least disturbed one). Every round's raw output is kept in
# <build dir>/bench-gemm/ for a look at the spread.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=build/bench_gemm
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BIN=$1; shift; fi
ARGS=("$@")
ROUNDS=${ROUNDS:-3}
PYTHON=${PYTHON:-/usr/bin/python3}
WAIT_IDLE=${WAIT_IDLE:-60}

# PyTorch, NumPy and OpenBLAS are bench-only dependencies.
if ! bash scripts/install-deps.sh --bench; then
  echo "run_gemm.sh: warning: could not install the bench dependencies; going on with what is there" >&2
fi
if [ ! -x "$BIN" ]; then
  make --no-print-directory "$BIN" || { echo "run_gemm.sh: cannot build $BIN" >&2; exit 1; }
fi

have_torch=0
if "$PYTHON" -c 'import torch' 2>/dev/null; then have_torch=1; fi

LOG="$(dirname "$BIN")/bench-gemm/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$LOG"

# How busy the machine is before we start: the share of CPU time idle over one second.
cpu_idle_pct() {
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  local total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  echo $(( total > 0 ? 100 * (b[4] - a[4]) / total : 0 ))
}
idle=$(cpu_idle_pct)
# Other work on the machine (a build, another benchmark) halves a 2-core result: wait a
# little for it to finish, then go on regardless (the table says how idle it was).
waited=0
while [ "$idle" -lt 90 ] && [ "$waited" -lt "$WAIT_IDLE" ]; do
  [ "$waited" -eq 0 ] && echo "run_gemm.sh: machine only ${idle}% idle; waiting up to ${WAIT_IDLE}s for it to quieten" >&2
  sleep 4; waited=$((waited + 5))
  idle=$(cpu_idle_pct)
done

for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS: ours" >&2
  "$BIN" "${ARGS[@]}" > "$LOG/ours.$r.txt" || { echo "run_gemm.sh: $BIN failed (round $r)" >&2; exit 1; }
  if [ $have_torch = 1 ]; then
    echo "round $r/$ROUNDS: torch" >&2
    "$PYTHON" bench/gemm_torch.py "${ARGS[@]}" > "$LOG/torch.$r.txt" \
      || { echo "run_gemm.sh: bench/gemm_torch.py failed (round $r)" >&2; exit 1; }
  fi
done
idle_after=$(cpu_idle_pct)

# ---- the report ----------------------------------------------------------------------
echo
echo "GEMM throughput, float32, CPU: td::matmul vs torch.mm"
echo "date:    $(date '+%Y-%m-%d %H:%M:%S %Z')"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores online"
echo "ours:    $(sed -n 's/^# impl //p' "$LOG/ours.1.txt"); $(sed -n 's/^# threads //p' "$LOG/ours.1.txt"); SIMD $(sed -n 's/^# simd //p' "$LOG/ours.1.txt")"
if [ $have_torch = 1 ]; then
  echo "torch:   $(sed -n 's/^# impl //p' "$LOG/torch.1.txt"); $(sed -n 's/^# threads //p' "$LOG/torch.1.txt")"
  echo "         $(sed -n 's/^# blas //p' "$LOG/torch.1.txt")"
else
  echo "torch:   NOT AVAILABLE: $PYTHON cannot import torch (Debian: apt-get install python3-torch, and use /usr/bin/python3); our numbers alone"
fi
echo "method:  $(sed -n 's/^# method //p' "$LOG/ours.1.txt"); $ROUNDS alternating rounds, best round shown"
echo "idle:    ${idle}% of CPU idle before, ${idle_after}% just after$([ "$idle" -lt 90 ] && echo '  (BUSY MACHINE: numbers are low and noisy)')"
echo "raw:     $LOG"
echo

awk -v have_torch=$have_torch '
  FNR == 1 { impl = (FILENAME ~ /\/torch\./) ? "torch" : "ours" }
  $1 == "shape" {
    name = $2
    if (!(name in seen)) { seen[name] = 1; order[++n] = name; dims[name] = $3 "x" $4 "x" $5; work[name] = $3 * $4 * $5 }
    g = $7 + 0
    key = impl SUBSEP name
    if (!(key in best) || g > best[key]) best[key] = g
    if (key in rounds) rounds[key] = rounds[key] "/" sprintf("%.0f", g)
    else rounds[key] = sprintf("%.0f", g)
  }
  END {
    if (have_torch) {
      printf "%-8s %-16s | %13s | %14s | %16s\n", "shape", "MxKxN", "ours GFLOP/s", "torch GFLOP/s", "ratio ours/torch"
      printf "%s\n", "---------------------------------------------------------------------------"
    } else {
      printf "%-8s %-16s | %13s\n", "shape", "MxKxN", "ours GFLOP/s"
      printf "%s\n", "----------------------------------------"
    }
    for (i = 1; i <= n; ++i) {
      s = order[i]
      o = best["ours" SUBSEP s]
      if (have_torch && (("torch" SUBSEP s) in best)) {
        t = best["torch" SUBSEP s]
        ratio = t > 0 ? o / t : 0
        flag = (work[s] >= 1024 * 1024 * 1024 && ratio < 0.9) ? "  < 0.9 target" : ""
        printf "%-8s %-16s | %13.1f | %14.1f | %16.2f%s\n", s, dims[s], o, t, ratio, flag
      } else {
        printf "%-8s %-16s | %13.1f\n", s, dims[s], o
      }
    }
    printf "\nper-round GFLOP/s (the spread shows the noise):\n"
    for (i = 1; i <= n; ++i) {
      s = order[i]
      line = sprintf("  %-8s ours %s", s, rounds["ours" SUBSEP s])
      if (have_torch) line = line sprintf("   torch %s", rounds["torch" SUBSEP s])
      print line
    }
  }' $(ls "$LOG"/ours.*.txt "$LOG"/torch.*.txt 2>/dev/null | sort -t. -k2,2n)
echo
echo "target: ratio >= 0.9 for products of 1024^3 multiply-adds and more (sq1024 and up, both conv shapes)"
