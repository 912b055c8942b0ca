#!/usr/bin/env bash
# bench/run_gemm.sh: td::matmul against torch.mm, same shapes, same machine, one table.
#
#   bash bench/run_gemm.sh [BENCH_BINARY] [--quick] [--shapes sq1024,conv64]
#   make bench                      (= bash bench/run_gemm.sh build/bench_gemm)
#
# Environment (bench/common.sh): ROUNDS (default 3): ours and torch run alternately,
#              ROUNDS times each; PYTHON (default /usr/bin/python3, Debian's, which has
#              python3-torch); WAIT_IDLE (default 60): seconds to wait for a busy machine
#              to go idle first.
# Each round prints, per shape, the median of its timed calls; the table shows for each
# side the best round (another process on the machine can only slow a round down, so the
# fastest round is the least disturbed one). Every round's raw output is kept in
# <build dir>/bench-gemm/ for a look at the spread.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

bench_args build/bench_gemm "$@"
bench_prepare gemm
wait_for_idle
run_rounds bench/gemm_torch.py

# ---- the report ----------------------------------------------------------------------
print_title "GEMM throughput, float32, CPU: td::matmul vs torch.mm"
echo "ours:    $(field ours impl); $(field ours threads); SIMD $(field ours simd)"
if [ $have_torch = 1 ]; then
  echo "torch:   $(field torch impl); $(field torch threads)"
  echo "         $(field torch blas)"
else
  print_no_torch
fi
print_method
print_idle "BUSY MACHINE: numbers are low and noisy"

table_awk '
  $1 == "shape" {
    if (!($2 in seen)) { dims[$2] = $3 "x" $4 "x" $5; work[$2] = $3 * $4 * $5 }
    record($2, $7 + 0, "max", "%.0f")
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
    print_rounds("per-round GFLOP/s (the spread shows the noise):", 8)
  }'
echo
echo "target: ratio >= 0.9 for products of 1024^3 multiply-adds and more (sq1024 and up, both conv shapes)"
