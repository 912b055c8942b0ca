#!/usr/bin/env bash
# bench/run_layers.sh: the UNet's layer ops (every conv2d shape of the demo and reference
# UNets, group_norm, attention), forward and backward, ours against PyTorch on the same
# machine, one table.
#
#   bash bench/run_layers.sh [BENCH_BINARY] [--quick] [--rows conv32_28,attn64_49] [--modes fwd,bwd_dx]
#   make bench BENCH=layers         (= bash bench/run_layers.sh build/bench_layers)
#
# Environment: ROUNDS, PYTHON, WAIT_IDLE as in bench/common.sh (rounds, interpreter,
#              seconds to wait for a busy machine to go idle first);
#              MALLOC (default steady; malloc_settings in bench/common.sh): both programs
#              run with the same glibc malloc thresholds; MALLOC=default leaves glibc's own
#              heuristics, under which a process lands in a fast or a page-faulting regime
#              (torch's conv1_28 forward: 0.9 or 6.4 ms from one process to the next).
# Each round prints, per row and mode, the median of its timed calls; the table shows for
# each side the best round (another process can only slow a round down). Every round's
# raw output is kept in <build dir>/bench-layers/.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

bench_args build/bench_layers "$@"
malloc_settings
bench_prepare layers
wait_for_idle
busy_processes
run_rounds bench/layers_torch.py

# ---- the report ----------------------------------------------------------------------
print_title "Layer ops, float32, CPU, batch 128: forward and backward, ours vs PyTorch"
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
      printf "%-22s | %9s | %9s | %22s\n", "row mode", "ours ms", "torch ms", "ratio ours/torch time"
      printf "%s\n", "-----------------------------------------------------------------------"
    } else {
      printf "%-22s | %9s\n", "row mode", "ours ms"
      printf "%s\n", "------------------------------------"
    }
    for (i = 1; i <= n; ++i) {
      key = order[i]
      o = best["ours" SUBSEP key]
      if (have_torch && (("torch" SUBSEP key) in best)) {
        t = best["torch" SUBSEP key]
        ratio = t > 0 ? o / t : 0
        flag = (sprintf("%.2f", ratio) + 0 > 1.0) ? "  > 1.0 target" : ""  # as printed: 1.004 passes
        printf "%-22s | %9.2f | %9.2f | %22.2f%s\n", key, o, t, ratio, flag
      } else {
        printf "%-22s | %9.2f\n", key, o
      }
    }
    print_rounds("per-round medians, ms (the spread shows the noise):", 22)
  }'
echo
echo "target: ratio <= 1.0 (our time no longer than torch's) for every row"
echo "modes:  fwd = forward alone (no graph); fwdbwd = forward + backward, every input requiring grad;"
echo "        bwd_dx, bwd_dw (conv rows) = forward + a backward that computes dx alone, or dW and db alone"
