#!/usr/bin/env bash
# bench/run_quality.sh: how good are a DDPM run's samples? (the quality table of the
# README; a benchmark, not a test)
#
#   bash bench/run_quality.sh RUN CLASSIFIER [N] [STEPS]
#   bash bench/run_quality.sh runs/demo runs/mnist-clf          # 1,000 DDIM-50 samples
#
# Draws N (default 1000) samples with DDIM-STEPS (default 50, eta 0) from the run's EMA
# weights, judges them with the classifier of `diffuse train classifier` (trained first
# if CLASSIFIER does not exist yet: the data set is read from RUN/config.txt), and
# prints one table beside the same figures for N real held-out images, the same images
# blurred (Gaussian, sigma 1.5) and uniform noise, so the numbers have a scale:
#   recognisable   share of images the classifier gives > 0.9 to one real class
#   vs real        recognisable / the real images' own recognisable share
#   rejected       share judged "not an image of this data set" (the reject class)
#   entropy/log10  entropy of the predicted-class histogram / log(number of classes)
#   FID            classifier FID: Fréchet distance of penultimate features to the held-out set
#   autoguided     an unconditional run with a guide.safetensors (train ddpm --guide-at) is
#                  sampled autoguided with w = $GUIDANCE (default 3), as `diffuse sample` does
#   as requested   conditional runs (train ... --cond class|text): the samples are drawn
#                  for every class in turn (--class all) with guidance w = $GUIDANCE
#                  (default 3); the share the classifier puts in the class asked for
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
run=${1:?usage: bench/run_quality.sh RUN CLASSIFIER [N] [STEPS]}
clf=${2:?usage: bench/run_quality.sh RUN CLASSIFIER [N] [STEPS]}
n=${3:-1000}
steps=${4:-50}
bin=${DIFFUSE:-build/diffuse}
[ -x "$bin" ] || make --no-print-directory all
[ -f "$run/model.safetensors" ] || { echo "run_quality: $run/model.safetensors: no trained run there" >&2; exit 1; }
data=$(sed -n 's/^data = //p' "$run/config.txt")
if [ ! -f "$clf/classifier.safetensors" ]; then
  echo "run_quality: no classifier in $clf: training one on $data first"
  "$bin" train classifier --data "$data" --out "$clf"
fi

cond=$(sed -n 's/^cond = //p' "$run/config.txt")
guidance=${GUIDANCE:-3}
kind=DDPM
[ -n "$(sed -n 's/^vae = //p' "$run/config.txt")" ] && kind=LDM
samples="$run/quality-ddim$steps-$n.npy"
rm -f "${samples%.npy}.labels.npy"  # (left by an earlier conditional judge of this run, if any)
cond_args=()
label="$kind samples (DDIM-$steps)"
if [ -n "$cond" ] && [ "$cond" != none ]; then
  cond_args=(--class all --guidance "$guidance")
  label="$kind samples (DDIM-$steps, w $guidance)"
elif [ -f "$run/guide.safetensors" ]; then  # an unconditional run with a guide: autoguided
  cond_args=(--guidance "$guidance")
  label="$kind samples (DDIM-$steps, autoguided w $guidance)"
fi
start=$(date +%s.%N)
"$bin" sample --run "$run" --n "$n" --sampler ddim --steps "$steps" --seed 1 "${cond_args[@]}" --out "$samples" > /dev/null
secs=$(echo "$(date +%s.%N) - $start" | bc)

# json KEY: the value of KEY in `diffuse eval --json`'s object (one key per line) on stdin.
json() { sed -n "s/^  \"$1\": \(.*\)/\1/p" | sed 's/,$//'; }
# pct FRACTION: a share as a percentage with 2 decimals ("" for null).
# (awk, not bc: JSON numbers may have an exponent)
pct() { awk -v x="$1" 'BEGIN { if (x != "null" && x != "") printf "%.2f", x * 100 }'; }

# eval_row NAME ARGS...: one table row from `diffuse eval --json`.
declare -A rec
eval_row() {
  local name=$1; shift
  local out
  out=$("$bin" eval --classifier "$clf" --count "$n" --json "$@")
  local r j e k f a
  r=$(pct "$(echo "$out" | json recognisable)")
  j=$(pct "$(echo "$out" | json rejected)")
  e=$(echo "$out" | json class_entropy)
  k=$(echo "$out" | json max_class_entropy)
  f=$(printf "%.4f" "$(echo "$out" | json classifier_fid)")
  a=$(pct "$(echo "$out" | json as_requested)")
  rec[$name]=$r
  local vs="-"
  [ -n "${rec[real]:-}" ] && vs=$(echo "scale=3; $r / ${rec[real]}" | bc)
  printf "| %-34s | %12s%% | %7s | %8s%% | %13s | %10s | %12s |\n" "$name" "$r" "$vs" "${j:-n/a}" \
    "$(awk -v e="$e" -v k="$k" 'BEGIN { printf "%.3f", e / k }')" "$f" "${a:+$a%}"
}

echo
echo "Quality of $run ($data), judged by $clf; $n images per row; samples: DDIM-$steps, eta 0, EMA weights ($(printf %.0f "$secs") s to draw)"
echo
printf "| %-34s | %13s | %7s | %9s | %13s | %10s | %12s |\n" "images" "recognisable" "vs real" "rejected" "entropy/log10" "FID" "as requested"
echo "| --- | --- | --- | --- | --- | --- | --- |"
eval_row real --reference real
if [ -f "${samples%.npy}.labels.npy" ]; then  # conditional: the class each sample was asked for
  eval_row "$label" --samples "$samples" --labels "${samples%.npy}.labels.npy"
else
  eval_row "$label" --samples "$samples"
fi
eval_row "real, blurred (sigma 1.5)" --reference blur
eval_row "uniform noise" --reference noise
