#!/usr/bin/env bash
# bench/run_unet.sh: the whole UNet, ours against PyTorch on the same machine: training
# steps per second, DDIM sampling time and peak memory, one report.
#
#   bash bench/run_unet.sh [BENCH_BINARY] [--quick] [--ch 64 --mults 1,2,2,2 ...]
#   make bench BENCH=unet           (= bash bench/run_unet.sh build/bench_unet)
# Without a network flag it reports two networks, one after the other: the demo UNet
# (configs/mnist-demo.cfg) and the reference UNet (ch 32, 2 res blocks, dropout 0.1).
#
# Every option after the binary goes to both programs (bench/unet.cpp and
# bench/unet_torch_bench.py take the same): --quick, --min-time S, and the network's
# --ch --mults --res-blocks --attn-res --heads --dropout --groups --image-size --in-channels
# (default: both networks, see below).
#
# Configurations, each run in a process of its own (so its peak memory is its own):
#   train B   one training step at batch B (forward, L_simple, backward, Adam), for B in
#             TRAIN_BATCHES (default "128 64"); the median step time -> images/s
#   sample B  DDIM with DDIM_STEPS model calls (default 50; 10 with --quick) on
#             SAMPLE_BATCH images (default 64): seconds
# Environment: THREADS (default 2): OpenMP threads for ours, torch.set_num_threads and
#              OPENBLAS_NUM_THREADS for torch;
#              ROUNDS (default 3; 1 with --quick), PYTHON, WAIT_IDLE as in bench/common.sh;
#              MALLOC (default steady; malloc_settings in bench/common.sh): both sides run with the
#              same glibc malloc thresholds, so freed activations are reused rather than
#              returned to the kernel and page-faulted back in at every step.
# Each round runs every configuration, ours then torch; the table shows for each side the
# best round. Raw outputs: <build dir>/bench-unet/<date>/{ours,torch}.ROUND.INDEX-CONFIG.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

rounds_given=${ROUNDS:-}
bench_args build/bench_unet "$@"

# No network flag given: both networks, one report each. The demo UNet is
# configs/mnist-demo.cfg's; the reference UNet is the DDPM paper's shape at MNIST size.
DEMO_NET=(--ch 16 --mults 1,2,2 --res-blocks 1 --attn-res 7 --heads 1 --dropout 0 --groups 4)
REFERENCE_NET=(--ch 32 --mults 1,2,2 --res-blocks 2 --attn-res 7 --heads 1 --dropout 0.1 --groups 8)
net_given=0
for a in "${ARGS[@]}"; do
  case "$a" in --ch|--mults|--res-blocks|--attn-res|--heads|--dropout|--groups) net_given=1 ;; esac
done
if [ $net_given = 0 ]; then
  echo "== the demo UNet (configs/mnist-demo.cfg)"
  bash "$0" "$BIN" "${ARGS[@]}" "${DEMO_NET[@]}" || exit 1
  echo
  echo "== the reference UNet (ch 32, mults 1,2,2, 2 res blocks, attention at 7x7, dropout 0.1)"
  bash "$0" "$BIN" "${ARGS[@]}" "${REFERENCE_NET[@]}" || exit 1
  exit 0
fi
quick=0
for a in "${ARGS[@]}"; do [ "$a" = --quick ] && quick=1; done
[ $quick = 1 ] && [ -z "$rounds_given" ] && ROUNDS=1
THREADS=${THREADS:-2}
TRAIN_BATCHES=${TRAIN_BATCHES:-128 64}
SAMPLE_BATCH=${SAMPLE_BATCH:-64}
DDIM_STEPS=${DDIM_STEPS:-$([ $quick = 1 ] && echo 10 || echo 50)}
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS

malloc_settings
bench_prepare unet
wait_for_idle
busy_processes

configs=()
for b in $TRAIN_BATCHES; do configs+=("train $b"); done
[ "$SAMPLE_BATCH" != 0 ] && configs+=("sample $SAMPLE_BATCH")  # SAMPLE_BATCH=0: training only
for r in $(seq 1 "$ROUNDS"); do
  for i in "${!configs[@]}"; do
    cfg=${configs[$i]}
    read -r mode batch <<< "$cfg"
    opts=(--mode "$mode" --batch "$batch" --steps "$DDIM_STEPS" --threads "$THREADS" "${ARGS[@]}")
    name=$i-$mode$batch  # ours.ROUND.NAME.txt: the index keeps the configurations in order
    echo "round $r/$ROUNDS: $cfg: ours" >&2
    "$BIN" "${opts[@]}" > "$LOG/ours.$r.$name.txt" || { echo "$SELF: $BIN failed ($cfg, round $r)" >&2; exit 1; }
    if [ "$have_torch" = 1 ]; then
      echo "round $r/$ROUNDS: $cfg: torch" >&2
      "$PYTHON" bench/unet_torch_bench.py "${opts[@]}" > "$LOG/torch.$r.$name.txt" \
        || { echo "$SELF: bench/unet_torch_bench.py failed ($cfg, round $r)" >&2; exit 1; }
    fi
  done
done
idle_after=$(cpu_idle_pct)

# One file per round and configuration: the '#' lines come from round 1's first.
field() {
  sed -n "s/^# $2 //p" "$LOG/$1.1.0-${configs[0]/ /}.txt"
}

# ---- the report ----------------------------------------------------------------------
print_title "UNet, float32, CPU, $THREADS threads each: training steps, DDIM sampling, peak memory, ours vs PyTorch"
echo "network: $(field ours config)"
echo "ours:    $(field ours impl)"
echo "         $(field ours threads); SIMD $(field ours simd)"
if [ $have_torch = 1 ]; then
  echo "torch:   $(field torch impl)"
  echo "         $(field torch threads)"
  [ "$(field ours config)" = "$(field torch config)" ] || echo "WARNING: the two configs differ: torch has $(field torch config)"
else
  print_no_torch
fi
echo "method:  $(field ours method); $ROUNDS alternating round(s), best round shown"
echo "malloc:  $malloc_note"
print_idle "BUSY MACHINE: numbers are slow and noisy${busy:+; busy: $busy}"

table_awk '
  FNR == 1 { key = "" }
  $1 == "train"  { key = "train b" $2; record(key, $2 / $3, "max", "%.1f") }
  $1 == "sample" { key = "ddim" $3 " b" $2; record(key, $4, "min", "%.2f") }
  $1 == "mem" && key != "" { record("mem " key, $2 / 1024, "min", "%.0f"); record("net " key, ($2 - $3) / 1024, "min", "%.0f") }
  function side(s, k) { return (s SUBSEP k) in best ? best[s SUBSEP k] : -1 }
  function row(label, k, fmt,   o, t) {
    o = side("ours", k); t = side("torch", k)
    if (have_torch && t > 0) printf "%-14s | " fmt " | " fmt " | %9.2f\n", label, o, t, o / t
    else printf "%-14s | " fmt "\n", label, o
  }
  END {
    print "training step (forward, L_simple, backward, Adam): images per second, ratio > 1: ours faster"
    printf "%-14s | %11s | %11s | %9s\n", "config", "ours img/s", "torch img/s", "ratio"
    for (i = 1; i <= n; ++i) if (order[i] ~ /^train/) row(order[i], order[i], "%11.1f")
    print ""
    print "DDIM sampling (eta 0, no_grad): seconds for the whole loop, ratio < 1: ours faster"
    printf "%-14s | %11s | %11s | %9s\n", "config", "ours s", "torch s", "ratio"
    for (i = 1; i <= n; ++i) if (order[i] ~ /^ddim/) row(order[i], order[i], "%11.2f")
    print ""
    print "peak resident memory (ru_maxrss), MB, ratio < 1: ours smaller; net = peak - RSS at start"
    print "(torch starts at ~230 MB: the interpreter and its libraries, before any tensor)"
    printf "%-14s | %10s | %10s | %9s | %10s | %10s | %9s\n", "config", "ours MB", "torch MB", "ratio", "ours net", "torch net", "ratio"
    for (i = 1; i <= n; ++i) {
      k = order[i]
      if (k !~ /^mem /) continue
      sub(/^mem /, "", k)
      o = side("ours", "mem " k); t = side("torch", "mem " k); on = side("ours", "net " k); tn = side("torch", "net " k)
      if (have_torch && t > 0)
        printf "%-14s | %10.0f | %10.0f | %9.2f | %10.0f | %10.0f | %9.2f\n", k, o, t, o / t, on, tn, (tn > 0 ? on / tn : 0)
      else
        printf "%-14s | %10.0f\n", k, o
    }
    print_rounds("per-round figures (img/s for train, s for ddim, MB for mem/net):", 14)
  }'
