#!/usr/bin/env bash
# bench/run_layers.sh: the UNet's layer ops (conv2d, group_norm, attention), forward and
# forward+backward, ours against PyTorch on the same machine, one table.
#
#   bash bench/run_layers.sh [BENCH_BINARY] [--quick] [--rows conv32_28,attn64_49]
#   make bench BENCH=layers         (= bash bench/run_layers.sh build/bench_layers)
#
# Environment: ROUNDS (default 3): ours and torch run alternately, ROUNDS times each;
#              PYTHON (default /usr/bin/python3, Debian's, which has python3-torch);
#              WAIT_IDLE (default 60): seconds to wait for a busy machine to go idle first;
#              MALLOC (default steady): both programs run with the same glibc malloc
#              settings, GLIBC_TUNABLES mmap_threshold=32 MiB and trim_threshold=1 GiB, so
#              freed tensors are reused instead of being returned to the kernel and
#              page-faulted back in at every call; MALLOC=default leaves glibc's own
#              heuristics, under which a process lands, by the luck of its allocation
#              history, in a fast or a page-faulting regime (torch's conv1_28 forward:
#              0.9 or 6.4 ms from one process to the next).
# Each round prints, per row and mode, the median of its timed calls; the table shows for
# each side the best round (another process can only slow a round down). Every round's
# raw output is kept in <build dir>/bench-layers/.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=build/bench_layers
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BIN=$1; shift; fi
ARGS=("$@")
ROUNDS=${ROUNDS:-3}
PYTHON=${PYTHON:-/usr/bin/python3}
WAIT_IDLE=${WAIT_IDLE:-60}
MALLOC=${MALLOC:-steady}
case "$MALLOC" in
  steady)  export GLIBC_TUNABLES="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
           malloc_note="steady: GLIBC_TUNABLES=$GLIBC_TUNABLES, both sides (MALLOC=default: glibc's own)" ;;
  default) malloc_note="glibc defaults${GLIBC_TUNABLES:+ + GLIBC_TUNABLES=$GLIBC_TUNABLES} (numbers may jump between processes: page faults)" ;;
  *) echo "run_layers.sh: MALLOC=$MALLOC: known are steady and default" >&2; exit 2 ;;
esac

if ! bash scripts/install-deps.sh --bench; then
  echo "run_layers.sh: warning: could not install the bench dependencies; going on with what is there" >&2
fi
if [ ! -x "$BIN" ]; then
  make --no-print-directory "$BIN" || { echo "run_layers.sh: cannot build $BIN" >&2; exit 1; }
fi

have_torch=0
if "$PYTHON" -c 'import torch' 2>/dev/null; then have_torch=1; fi

LOG="$(dirname "$BIN")/bench-layers/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$LOG"

# The share of CPU time idle over one second.
cpu_idle_pct() {
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  local total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  echo $(( total > 0 ? 100 * (b[4] - a[4]) / total : 0 ))
}
idle=$(cpu_idle_pct)
waited=0
while [ "$idle" -lt 90 ] && [ "$waited" -lt "$WAIT_IDLE" ]; do
  [ "$waited" -eq 0 ] && echo "run_layers.sh: machine only ${idle}% idle; waiting up to ${WAIT_IDLE}s for it to quieten" >&2
  sleep 4; waited=$((waited + 5))
  idle=$(cpu_idle_pct)
done
# When it is still busy, say who is busy (the header repeats it).
busy=""
if [ "$idle" -lt 90 ]; then
  busy=$(ps -eo pcpu=,pid=,comm= --sort=-pcpu | head -3 | awk '$1 >= 10 { printf "%s%s (pid %s) %s%%", sep, $3, $2, $1; sep = ", " }')
fi

for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS: ours" >&2
  "$BIN" "${ARGS[@]}" > "$LOG/ours.$r.txt" || { echo "run_layers.sh: $BIN failed (round $r)" >&2; exit 1; }
  if [ $have_torch = 1 ]; then
    echo "round $r/$ROUNDS: torch" >&2
    "$PYTHON" bench/layers_torch.py "${ARGS[@]}" > "$LOG/torch.$r.txt" \
      || { echo "run_layers.sh: bench/layers_torch.py failed (round $r)" >&2; exit 1; }
  fi
done
idle_after=$(cpu_idle_pct)

# ---- the report ----------------------------------------------------------------------
echo
echo "Layer ops, float32, CPU, batch 128: forward and forward+backward, ours vs PyTorch"
echo "date:    $(date '+%Y-%m-%d %H:%M:%S %Z')"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores online"
echo "ours:    $(sed -n 's/^# impl //p' "$LOG/ours.1.txt")"
echo "         $(sed -n 's/^# threads //p' "$LOG/ours.1.txt"); SIMD $(sed -n 's/^# simd //p' "$LOG/ours.1.txt")"
if [ $have_torch = 1 ]; then
  echo "torch:   $(sed -n 's/^# impl //p' "$LOG/torch.1.txt")"
  echo "         $(sed -n 's/^# threads //p' "$LOG/torch.1.txt")"
  echo "         $(sed -n 's/^# backend //p' "$LOG/torch.1.txt")"
  conv=$(sed -n 's/^# conv kernels //p' "$LOG/torch.1.txt")
  [ -n "$conv" ] && echo "         conv kernels $conv"
else
  echo "torch:   NOT AVAILABLE: $PYTHON cannot import torch (Debian: apt-get install python3-torch, and use /usr/bin/python3); our numbers alone"
fi
echo "method:  $(sed -n 's/^# method //p' "$LOG/ours.1.txt"); $ROUNDS alternating rounds, best round shown"
echo "malloc:  $malloc_note"
echo "idle:    ${idle}% of CPU idle before, ${idle_after}% just after$([ "$idle" -lt 90 ] && echo "  (BUSY MACHINE: numbers are slow and noisy${busy:+; busy: $busy})")"
echo "raw:     $LOG"
echo

awk -v have_torch=$have_torch '
  FNR == 1 { impl = (FILENAME ~ /\/torch\./) ? "torch" : "ours" }
  $1 == "row" {
    key = $2 " " $3
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    ms = $4 * 1000
    k = impl SUBSEP key
    if (!(k in best) || ms < best[k]) best[k] = ms
    if (k in rounds) rounds[k] = rounds[k] "/" sprintf("%.2f", ms)
    else rounds[k] = sprintf("%.2f", ms)
  }
  END {
    if (have_torch) {
      printf "%-17s | %9s | %9s | %22s\n", "row", "ours ms", "torch ms", "ratio ours/torch time"
      printf "%s\n", "------------------------------------------------------------------"
    } else {
      printf "%-17s | %9s\n", "row", "ours ms"
      printf "%s\n", "-------------------------------"
    }
    for (i = 1; i <= n; ++i) {
      key = order[i]
      o = best["ours" SUBSEP key]
      if (have_torch && (("torch" SUBSEP key) in best)) {
        t = best["torch" SUBSEP key]
        ratio = t > 0 ? o / t : 0
        flag = (sprintf("%.2f", ratio) + 0 > 1.0) ? "  > 1.0 target" : ""  # as printed: 1.004 passes
        printf "%-17s | %9.2f | %9.2f | %22.2f%s\n", key, o, t, ratio, flag
      } else {
        printf "%-17s | %9.2f\n", key, o
      }
    }
    printf "\nper-round medians, ms (the spread shows the noise):\n"
    for (i = 1; i <= n; ++i) {
      key = order[i]
      line = sprintf("  %-17s ours %s", key, rounds["ours" SUBSEP key])
      if (have_torch) line = line sprintf("   torch %s", rounds["torch" SUBSEP key])
      print line
    }
  }' $(ls "$LOG"/ours.*.txt "$LOG"/torch.*.txt 2>/dev/null | sort -t. -k2,2n)
echo
echo "target: ratio <= 1.0 (our time no longer than torch's) for every row; fwdbwd = forward + backward"
