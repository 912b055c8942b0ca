#!/usr/bin/env bash
# bench/run_memory.sh: does training leak? Trains a DDPM for many steps and reads the
# resident memory `diffuse train` records after every step (metrics.csv's rss_mb column,
# /proc/self/statm), then says whether it stays flat, and the peak of the whole process.
#
#   bash bench/run_memory.sh [CONFIG] [STEPS]     (defaults: configs/mnist-demo.cfg, 5000)
#   make bench BENCH=memory
#   TRAIN_ARGS="--batch 16" bash bench/run_memory.sh     (more flags for `diffuse train ddpm`)
#
# The run is a real one: preview grids, checkpoints every 2 minutes and the final samples
# and pictures all happen, since a leak could hide in any of them. The first steps are a
# warm-up (the CPU caching allocator, tensor/cpu/memory.cpp, fills with the blocks one
# step needs, and the OS maps the data set); "flat" is judged after it:
#   growth = median RSS of the last 100 steps - median RSS of the 100 steps after warm-up,
#   spread = max - min RSS after warm-up, and the least-squares slope in MB per 1,000 steps.
# Memory is the same whatever else the machine does, so a busy machine only makes it slow.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
config=${1:-configs/mnist-demo.cfg}
steps=${2:-5000}
bin=${DIFFUSE:-build/diffuse}
tolerance_mb=${TOLERANCE_MB:-5}
case "$steps" in ''|*[!0-9]*) echo "run_memory: STEPS=$steps is not a whole number" >&2; exit 2;; esac
[ "$steps" -ge 400 ] || { echo "run_memory: give at least 400 steps (warm-up 200, then a window)" >&2; exit 2; }
[ -f "$config" ] || { echo "run_memory: no config file $config" >&2; exit 2; }
[ -x "$bin" ] || make --no-print-directory all
[ -x /usr/bin/time ] || bash scripts/install-deps.sh --bench
data=$(sed -n 's/^data *= *//p' "$config")
bash scripts/get-data.sh "${data:-mnist}" > /dev/null

out=${OUT_RUN:-runs/memory-bench}
echo "run_memory: training $config for $steps steps into $out (the progress line shows the ETA)..." >&2
/usr/bin/time -f "%M %e" -o "$out.time" "$bin" train ddpm --config "$config" --steps "$steps" --out "$out" --overwrite ${TRAIN_ARGS:-} \
  | tee "$out.log" | grep --line-buffered -E "^(model|training|done)" >&2
read -r peak_kb wall < "$out.time"

# warm-up: 200 steps or the first 5% of the run, whichever is longer
awk -F, -v steps="$steps" -v peak_kb="$peak_kb" -v wall="$wall" -v tol="$tolerance_mb" -v cfg="$config" '
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; if (!("rss_mb" in col)) { print "run_memory: metrics.csv has no rss_mb column" > "/dev/stderr"; exit 1 } next }
  { step = $(col["step"]); rss = $(col["rss_mb"]); if (rss == "") next
    if (step == 1) first = rss
    warm = steps * 0.05 > 200 ? int(steps * 0.05) : 200
    if (step <= warm) { at_warm = rss; next }
    n++; xs[n] = step; ys[n] = rss
    if (n == 1 || rss < lo) lo = rss
    if (n == 1 || rss > hi) hi = rss
    if (step <= warm + 100) a[++na] = rss
    if (step > steps - 100) b[++nb] = rss
    sx += step; sy += rss; sxx += step * step; sxy += step * rss }
  END {
    if (n < 200) { print "run_memory: too few steps recorded after the warm-up" > "/dev/stderr"; exit 1 }
    slope = (n * sxy - sx * sy) / (n * sxx - sx * sx) * 1000
    start = median(a, na); end = median(b, nb); growth = end - start; spread = hi - lo
    printf "\nResident memory of `diffuse train ddpm --config %s --steps %d` (metrics.csv rss_mb)\n\n", cfg, steps
    printf "| measure | MB |\n| --- | --- |\n"
    printf "| after step 1 | %.1f |\n", first
    printf "| after the warm-up (step %d) | %.1f |\n", warm, at_warm
    printf "| median of steps %d-%d | %.1f |\n", warm + 1, warm + 100, start
    printf "| median of the last 100 steps | %.1f |\n", end
    printf "| growth over %d steps | %+.1f |\n", steps - warm, growth
    printf "| spread (max - min after warm-up) | %.1f |\n", spread
    printf "| slope, MB per 1,000 steps | %+.2f |\n", slope
    printf "| peak of the whole process (ru_maxrss: training, previews, final samples) | %.0f |\n", peak_kb / 1024
    printf "\nwall time %.0f s. ", wall
    if (growth < tol && growth > -tol && spread < 2 * tol) printf "FLAT: growth %+.1f MB and spread %.1f MB (tolerance %g MB)\n", growth, spread, tol
    else { printf "NOT FLAT: growth %+.1f MB, spread %.1f MB (tolerance %g MB)\n", growth, spread, tol; exit 3 }
  }' "$out/metrics.csv"
echo "(the curve: $out/memory.png, in $out/index.html)"
