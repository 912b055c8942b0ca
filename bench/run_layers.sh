#!/usr/bin/env bash
# bench/run_layers.sh: the UNet's layer ops (conv2d, group_norm, attention), forward and
# forward+backward, ours against PyTorch on the same machine, one table.
#
#   bash bench/run_layers.sh [BENCH_BINARY] [--quick] [--rows conv32_28,attn64_49]
#   make bench BENCH=layers         (= bash bench/run_layers.sh build/bench_layers)
#
# Environment: ROUNDS, PYTHON, WAIT_IDLE as in bench/common.sh (rounds, interpreter,
#              seconds to wait for a busy machine to go idle first);
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
. bench/common.sh

bench_args build/bench_layers "$@"
MALLOC=${MALLOC:-steady}
case "$MALLOC" in
  steady)  export GLIBC_TUNABLES="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
           malloc_note="steady: GLIBC_TUNABLES=$GLIBC_TUNABLES, both sides (MALLOC=default: glibc's own)" ;;
  default) malloc_note="glibc defaults${GLIBC_TUNABLES:+ + GLIBC_TUNABLES=$GLIBC_TUNABLES} (numbers may jump between processes: page faults)" ;;
  *) echo "run_layers.sh: MALLOC=$MALLOC: known are steady and default" >&2; exit 2 ;;
esac
bench_prepare layers
wait_for_idle
# When it is still busy, say who is busy (the header repeats it).
busy=""
if [ "$idle" -lt 90 ]; then
  busy=$(ps -eo pcpu=,pid=,comm= --sort=-pcpu | head -3 | awk '$1 >= 10 { printf "%s%s (pid %s) %s%%", sep, $3, $2, $1; sep = ", " }')
fi
run_rounds bench/layers_torch.py

# ---- the report ----------------------------------------------------------------------
print_title "Layer ops, float32, CPU, batch 128: forward and forward+backward, ours vs PyTorch"
echo "ours:    $(field ours impl)"
echo "         $(field ours threads); SIMD $(field ours simd)"
if [ $have_torch = 1 ]; then
  echo "torch:   $(field torch impl)"
  echo "         $(field torch threads)"
  echo "         $(field torch backend)"
  conv=$(field torch "conv kernels")
  [ -n "$conv" ] && echo "         conv kernels $conv"
else
  print_no_torch
fi
print_method
echo "malloc:  $malloc_note"
print_idle "BUSY MACHINE: numbers are slow and noisy${busy:+; busy: $busy}"

table_awk '
  $1 == "row" { record($2 " " $3, $4 * 1000, "min", "%.2f") }
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
    print_rounds("per-round medians, ms (the spread shows the noise):", 17)
  }'
echo
echo "target: ratio <= 1.0 (our time no longer than torch's) for every row; fwdbwd = forward + backward"
