#!/usr/bin/env bash
# bench/run_distributed.sh: data-parallel training on one machine: images per second for
# 1 and 2 ranks with one OpenMP thread each, and the scaling efficiency.
#
#   bash bench/run_distributed.sh [DIFFUSE_BINARY] [--batch 16] [--steps 30] [--ch 16 ...]
#   bash bench/run_distributed.sh --steps-only [BENCH_BINARY] [--batch 16] [--steps 20] [...]
#
# Default: the real trainer, `diffuse train ddpm` (DIFFUSE_BINARY default build/diffuse,
# built when missing), on a small UNet (ch 16, mults 1,2, one ResBlock per level,
# attention at 8) and a synthetic set of 2048 random 16 x 16 images (the bench measures
# time, not learning); options after the binary go to every run and override those.
#   plain      one process, no MPI, --batch B: the baseline
#   1 rank     mpirun -np 1 ... --distributed, --batch B: the same plus the communicator
#   2 ranks    mpirun -np 2 ... --distributed, --batch B per rank (global batch 2B)
#   2 at once  two plain runs at the same time, one per core: the most 2 ranks could get
# img/s = global batch x steps / their time, from metrics.csv's seconds column, from
# step 5 (after the warm-up) to the last step (sample grids and checkpoints are off until
# the end, which is not timed). Scaling efficiency = img/s at P ranks / (P x img/s of the
# plain run): 1.0 means each added rank added a plain run's throughput; the all-reduce,
# the per-step broadcast of rank 0's decisions and waiting for the slower rank keep it
# below.
# --steps-only: the bare training step of bench/distributed.cpp instead (BENCH_BINARY
# default build/bench_distributed), which also reports the all-reduce time on its own.
# Environment: ROUNDS (default 3; the round with the median img/s is shown: this machine is noisy), WAIT_IDLE as in bench/common.sh,
#              RANKS (default "1 2"; e.g. "1 2 4" on a larger machine).
# Each rank's TD_DIST_PROFILE line (distributed/communicator.h: its CPU time, its time
# waiting for a core, in the collectives and waiting in them) goes to the raw outputs;
# the report shows those of the largest run's first round.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

MODE=trainer
if [ "${1:-}" = "--steps-only" ]; then MODE=steps; shift; fi
if [ "$MODE" = steps ]; then bench_args build/bench_distributed "$@"; else bench_args build/diffuse "$@"; fi
RANKS=${RANKS:-1 2}
export TD_DIST_PROFILE=1
export OMP_WAIT_POLICY=passive  # (OMP_NUM_THREADS=1 is set per run: nproc, in the report, obeys it)

if ! command -v mpirun > /dev/null; then
  echo "$SELF: mpirun not found: bash scripts/install-deps.sh --mpi, then make clean && make" >&2
  exit 1
fi
if [ ! -x "$BIN" ]; then
  make --no-print-directory BUILD="$(dirname "$BIN")" "$BIN" || { echo "$SELF: cannot build $BIN" >&2; exit 1; }
fi
LOG="$(dirname "$BIN")/bench-distributed/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$LOG"

# ---- the bare training step (bench/distributed.cpp) -----------------------------------
if [ "$MODE" = steps ]; then
  wait_for_idle
  for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS: plain" >&2
    OMP_NUM_THREADS=1 "$BIN" --no-comm "${ARGS[@]}" > "$LOG/plain.$r.txt" || { echo "$SELF: $BIN --no-comm failed" >&2; exit 1; }
    for p in $RANKS; do
      echo "round $r/$ROUNDS: $p rank(s)" >&2
      OMP_NUM_THREADS=1 bash distributed/mpirun.sh -np "$p" --bind-to core "$BIN" "${ARGS[@]}" > "$LOG/np$p.$r.txt" 2>&1 \
        || { echo "$SELF: mpirun -np $p failed:" >&2; cat "$LOG/np$p.$r.txt" >&2; exit 1; }
    done
  done
  idle_after=$(cpu_idle_pct)

  print_title "Data-parallel training steps (bench/distributed.cpp), CPU, 1 OpenMP thread per rank"
  echo "network: $(sed -n 's/^# config //p' "$LOG/plain.1.txt")"
  echo "mpi:     $(sed -n 's/^# comm //p' "$LOG/np${RANKS##* }.1.txt")"
  echo "method:  median step time over the timed steps (after 2 warm-up steps); $ROUNDS round(s), the median round shown; ranks bound to a core each"
  print_idle "BUSY MACHINE: other work shares the cores, the numbers are slow and noisy"

  # One row per configuration; each file's 'result P B STEP_S ALLREDUCE_S STEPS' line.
  awk '
    FNR == 1 { name = FILENAME; sub(/.*\//, "", name); sub(/\.[0-9]+\.txt$/, "", name) }
    $1 == "result" {
      # every round kept; the END block shows the round with the median img/s
      j = ++rounds[name]
      ips_r[name, j] = $2 * $3 / $4; P_r[name, j] = $2; B_r[name, j] = $3; step_r[name, j] = $4; ar_r[name, j] = $5
      if (!(name in seen)) { seen[name] = 1; order[++n] = name }
    }
    END {
      for (i = 1; i <= n; ++i) {
        k = order[i]; m = rounds[k]
        for (a = 1; a <= m; ++a) idx[a] = a
        for (a = 2; a <= m; ++a) for (c = a; c > 1 && ips_r[k, idx[c - 1]] > ips_r[k, idx[c]]; --c) { t = idx[c]; idx[c] = idx[c - 1]; idx[c - 1] = t }
        j = idx[int((m + 1) / 2)]
        best[k] = ips_r[k, j]; P[k] = P_r[k, j]; B[k] = B_r[k, j]; step[k] = step_r[k, j]; ar[k] = ar_r[k, j]
      }
      print "| setup | ranks | batch/rank | global batch | step ms | all-reduce ms | img/s | scaling efficiency |"
      print "|---|---:|---:|---:|---:|---:|---:|---:|"
      base = best["plain"]
      for (i = 1; i <= n; ++i) {
        k = order[i]
        label = (k == "plain") ? "plain (no MPI)" : "mpirun -np " P[k]
        eff = (base > 0) ? sprintf("%.2f", best[k] / (P[k] * base)) : "-"
        printf "| %s | %d | %d | %d | %.1f | %.2f | %.1f | %s |\n", label, P[k], B[k], P[k] * B[k], 1000 * step[k], \
               (k == "plain" ? 0 : 1000 * ar[k]), best[k], eff
      }
    }' $(ls "$LOG"/plain.*.txt; for p in $RANKS; do ls "$LOG"/np$p.*.txt; done)
  echo
  echo "scaling efficiency = img/s / (ranks x img/s of the plain run); raw outputs in $LOG"
  exit 0
fi

# ---- the trainer: diffuse train ddpm [--distributed] -----------------------------------
# A synthetic IDX data set: 2048 random 16 x 16 grey images, label 0 (an unconditional
# model). Header: magic 0x00000803 / 0x00000801, then the sizes, big-endian.
DATA="$LOG/data"
mkdir -p "$DATA"
{ printf '\x00\x00\x08\x03\x00\x00\x08\x00\x00\x00\x00\x10\x00\x00\x00\x10'; head -c $((2048 * 256)) /dev/urandom; } \
  > "$DATA/train-images-idx3-ubyte"
{ printf '\x00\x00\x08\x01\x00\x00\x08\x00'; head -c 2048 /dev/zero; } > "$DATA/train-labels-idx1-ubyte"

B=16
STEPS=30
for ((i = 0; i < ${#ARGS[@]}; ++i)); do  # the batch and the steps, if given, for the table
  case "${ARGS[$i]}" in
    --batch) B=${ARGS[$((i + 1))]} ;;
    --steps) STEPS=${ARGS[$((i + 1))]} ;;
  esac
done
TRAIN=(train ddpm --data "$DATA" --ch 16 --mults 1,2 --res-blocks 1 --attn-res 8 --groups 8 --dropout 0
       --batch "$B" --steps "$STEPS" --threads 1 --sample-every 1000000 --ckpt-every 1000000
       --final-samples 1 --final-steps 1 "${ARGS[@]}")

# run NAME RANKS: one training into $LOG/NAME.ROUND/ (RANKS 0: plain, no mpirun)
run() {
  local name=$1 p=$2 out="$LOG/$1.$r"
  echo "round $r/$ROUNDS: $name" >&2
  if [ "$p" -eq 0 ]; then
    OMP_NUM_THREADS=1 "$BIN" "${TRAIN[@]}" --out "$out" > "$out.txt" 2>&1
  else
    OMP_NUM_THREADS=1 bash distributed/mpirun.sh -np "$p" --bind-to core "$BIN" "${TRAIN[@]}" --out "$out" \
      --distributed > "$out.txt" 2>&1
  fi || { echo "$SELF: $name failed:" >&2; cat "$out.txt" >&2; exit 1; }
  # "result NAME RANKS IMG_PER_S": global batch x steps 5..last / their seconds
  awk -F, -v name="$name" -v p="$p" -v b="$B" '
    NR > 1 && $1 == 5 { s0 = $6 }
    NR > 1 { last = $1; s1 = $6 }
    END { g = (p > 0 ? p : 1) * b; if (s1 > s0) print "result", name, (p > 0 ? p : 1), g * (last - 5) / (s1 - s0) }' \
    "$out/metrics.csv" >> "$LOG/results.txt"
}

# apart P: P plain runs at the same time, run i bound to core i, no MPI: what P processes
# get out of this machine when they never wait for each other (shared caches, memory,
# a core busier than another). A P-rank run cannot beat it; the gap between the two is
# what data parallelism itself costs (the all-reduce, waiting for the slowest rank).
apart() {
  local p=$1 name="apart$1" i pids=()
  echo "round $r/$ROUNDS: $name" >&2
  for ((i = 0; i < p; ++i)); do
    OMP_NUM_THREADS=1 taskset -c $((i % $(nproc))) "$BIN" "${TRAIN[@]}" --out "$LOG/$name.$r.$i" \
      > "$LOG/$name.$r.$i.txt" 2>&1 &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || { echo "$SELF: $name failed: see $LOG/$name.$r.*.txt" >&2; exit 1; }; done
  for ((i = 0; i < p; ++i)); do
    awk -F, -v b="$B" 'NR > 1 && $1 == 5 { s0 = $6 } NR > 1 { last = $1; s1 = $6 }
      END { if (s1 > s0) print b * (last - 5) / (s1 - s0) }' "$LOG/$name.$r.$i/metrics.csv"
  done | awk -v name="$name" -v p="$p" '{ sum += $1 } END { print "result", name, p, sum }' >> "$LOG/results.txt"
}

wait_for_idle
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
  run plain 0
  [ "${RANKS##* }" -gt 1 ] && apart "${RANKS##* }"
  for p in $RANKS; do run "np$p" "$p"; done
done
idle_after=$(cpu_idle_pct)

print_title "Data-parallel training with diffuse train ddpm --distributed, CPU, 1 OpenMP thread per rank"
echo "network: $(sed -n 's/^model: //p' "$LOG/plain.1.txt")"
echo "mpi:     $(sed -n 's/^distributed: //p' "$LOG/np${RANKS##* }.1.txt")"
echo "method:  img/s over steps 5..$STEPS of each run (metrics.csv); $ROUNDS round(s), the median round shown; ranks bound to a core each"
echo "load:    $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after (load average: 1, 5, 15 min)"
print_idle "BUSY MACHINE: other work shares the cores, the numbers are slow and noisy"

awk -v b="$B" '
  $1 == "result" {
    # every round kept; the END block takes the median img/s of each setup
    j = ++rounds[$2]; ips_r[$2, j] = $4; P[$2] = $3
    if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 }
  }
  END {
    for (i = 1; i <= n; ++i) {
      k = order[i]; m = rounds[k]
      for (a = 1; a <= m; ++a) v[a] = ips_r[k, a]
      for (a = 2; a <= m; ++a) for (c = a; c > 1 && v[c - 1] > v[c]; --c) { t = v[c]; v[c] = v[c - 1]; v[c - 1] = t }
      best[k] = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    print "| setup | ranks | batch/rank | global batch | img/s | scaling efficiency |"
    print "|---|---:|---:|---:|---:|---:|"
    base = best["plain"]
    for (i = 1; i <= n; ++i) {
      k = order[i]
      label = (k == "plain") ? "diffuse train ddpm (no MPI)" \
            : (k ~ /^apart/) ? P[k] " of those at once, a core each (no MPI)" : "mpirun -np " P[k] " ... --distributed"
      eff = (base > 0) ? sprintf("%.2f", best[k] / (P[k] * base)) : "-"
      printf "| %s | %d | %d | %d | %.1f | %s |\n", label, P[k], b, P[k] * b, best[k], eff
    }
    # The rounds alternate the setups, so a round compares runs made minutes apart at
    # most: on a noisy machine its own ratio is steadier than a ratio of medians.
    print ""
    for (i = 1; i <= n; ++i) {
      k = order[i]
      if (k == "plain") continue
      line = ""
      for (a = 1; a <= rounds[k] && a <= rounds["plain"]; ++a)
        line = line sprintf(" %.2f", ips_r[k, a] / (P[k] * ips_r["plain", a]))
      print "scaling efficiency of " k ", round by round:" line
    }
  }' "$LOG/results.txt"
echo
echo "where the time went, mpirun -np ${RANKS##* } round 1 (TD_DIST_PROFILE):"
grep '^rank [0-9]*: ' "$LOG/np${RANKS##* }.1.txt" | sort -n -k2 | sed 's/^/  /'
echo
echo "scaling efficiency = img/s / (ranks x img/s of the plain run); raw outputs in $LOG"
