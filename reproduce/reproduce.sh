#!/usr/bin/env bash
# reproduce/reproduce.sh: the papers' tables at laptop scale (`make reproduce`).
#
#   bash reproduce/reproduce.sh              every table, then docs/reproductions.md
#   bash reproduce/reproduce.sh ddim         one table (judge, ddim, iddpm, ddpm, eta, cfg, ldm)
#   MINI=1 OUT=/tmp/r DATA=DIR bash reproduce/reproduce.sh   the same pipeline in miniature
#
# Each table is one function below: it trains the runs it needs (only when
# OUT/NAME/model.safetensors is missing, with --steps so a run is the same run every time),
# samples them, judges the samples with `diffuse eval` and writes its measurements as
# `key value` lines to OUT/measurements/TABLE.txt (rewritten each time the table runs).
# Then reproduce/render.sh fills reproduce/reproductions.md.in with them; it refuses to
# write the page if a measurement is missing. A second call retrains nothing and measures
# again.
#
# Settings (environment):
#   OUT    where the runs and measurements go (default runs/reproduce)
#   PAGE   the page to write (default docs/reproductions.md; pictures beside it, in
#          docs/reproductions/)
#   DATA   the data set (default mnist; a folder of IDX files works too)
#   MINI=1 tiny models, a few steps, 16 samples: checks the pipeline, not the papers
#   BUILD  the build folder holding diffuse and reproduce_paths (default build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD=${BUILD:-build}
DIFFUSE=$BUILD/diffuse
PATHS=$BUILD/reproduce_paths
OUT=${OUT:-runs/reproduce}
PAGE=${PAGE:-docs/reproductions.md}
PICTURES=${PAGE%.md}
DATA=${DATA:-mnist}
MINI=${MINI:-0}
TABLES=(judge ddim iddpm ddpm eta cfg ldm)

# The budgets. The full ones are sized for about 60 minutes on 2 cores in all: a DDPM of
# the demo's shape (configs/mnist-demo.cfg) takes 0.17 s a step, 1,000 DDIM-50 samples 35 s.
if [ "$MINI" = 1 ]; then
  STEPS=20 SHORT_STEPS=10 VAE_STEPS=10 N=16 N_SWEEP=16
  SHRINK=(--ch 8 --groups 2 --T 100 --batch 16 --attn-res none --final-samples 4 --final-steps 5 --sample-every 1000)
  VAE_SHRINK=(--ch 8 --groups 2 --batch 16 --eval-images 16)
  CLF_ARGS=(--epochs 1 --width 8 --batch 32)
  # One thread: models this small gain nothing from a second, and on a busy machine the
  # threads of an OpenMP team waiting for each other made every call ten times slower.
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
  STEPS=1800 SHORT_STEPS=600 VAE_STEPS=400 N=1000 N_SWEEP=500
  SHRINK=() VAE_SHRINK=() CLF_ARGS=()
fi
CLF=$OUT/classifier

say() { echo "reproduce: $*"; }
die() { echo "reproduce: error: $*" >&2; exit 1; }

# ---- measurements -------------------------------------------------------------------------

# put KEY VALUE...: one measurement of the current table.
put() { local key=$1; shift; echo "$key $*" >> "$MEASURED"; }

# value KEY: a measurement the current table has made already.
value() { sed -n "s/^$1 //p" "$MEASURED" | tail -1; }
# difference KEY A B: KEY = A - B, of two measurements (signed, one decimal).
difference() { put "$1" "$(awk -v a="$(value "$2")" -v b="$(value "$3")" 'BEGIN { printf "%.1f", a - b }')"; }
# magnitude KEY A: KEY = |A|.
magnitude() { put "$1" "$(awk -v a="$(value "$2")" 'BEGIN { printf "%.1f", a < 0 ? -a : a }')"; }
# lowest KEY PREFIX SUFFIX CHOICES...: KEY = the choice c whose PREFIX c SUFFIX is lowest.
lowest() {
  local key=$1 prefix=$2 suffix=$3 c best="" v low=""; shift 3
  for c in "$@"; do
    v=$(value "$prefix$c$suffix")
    if [ -z "$low" ] || awk -v v="$v" -v l="$low" 'BEGIN { exit !(v < l) }'; then low=$v best=$c; fi
  done
  put "$key" "$best"
}

# json KEY: the value of KEY in `diffuse eval --json`'s object (one key per line) on stdin.
json() { sed -n "s/^  \"$1\": \(.*\)/\1/p" | sed 's/,$//'; }
pct() { awk -v x="$1" 'BEGIN { printf "%.1f", x * 100 }'; }
num() { awk -v x="$1" 'BEGIN { printf "%.1f", x }'; }

# judge KEY SAMPLES.npy [LABELS.npy]: KEY_rec (recognisable, %), KEY_fid (classifier FID)
# and, given the classes asked for, KEY_onclass (% classified as asked).
judge() {
  local key=$1 samples=$2 labels=${3:-} out
  if [ -n "$labels" ]; then
    out=$("$DIFFUSE" eval --classifier "$CLF" --samples "$samples" --labels "$labels" --json)
    put "${key}_onclass" "$(pct "$(echo "$out" | json as_requested)")"
  else
    out=$("$DIFFUSE" eval --classifier "$CLF" --samples "$samples" --json)
  fi
  put "${key}_rec" "$(pct "$(echo "$out" | json recognisable)")"
  put "${key}_fid" "$(num "$(echo "$out" | json classifier_fid)")"
}

# sample_judge KEY RUN N [diffuse sample flags...]: draws N samples (seed 1) and judges them.
sample_judge() {
  local key=$1 run=$2 n=$3; shift 3
  local samples=$OUT/samples/$key.npy
  mkdir -p "$OUT/samples"
  "$DIFFUSE" sample --run "$OUT/$run" --n "$n" --seed 1 "$@" --out "$samples" > /dev/null
  judge "$key" "$samples"
}

# setting_of RUN KEY: a setting from the run's config.txt.
setting_of() { sed -n "s/^$2 = //p" "$OUT/$1/config.txt"; }

# psnr_of RUN: an autoencoder's held-out PSNR, from its model file's metadata.
psnr_of() {
  grep -ao '"held_out_psnr":"[0-9.]*"' "$OUT/$1/model.safetensors" | sed 's/.*:"\(.*\)"/\1/' | awk '{ printf "%.1f", $1 }'
}

# seconds_of RUN: the training time metrics.csv recorded at the last step.
seconds_of() {
  awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "seconds") c = i; next } { s = $c } END { print s }' "$OUT/$1/metrics.csv"
}

# minutes_of RUN: the same in minutes.
minutes_of() { awk -v s="$(seconds_of "$1")" 'BEGIN { printf "%.1f", s / 60 }'; }

# ---- training, cached ---------------------------------------------------------------------

# train KIND NAME FLAGS...: `diffuse train KIND`, unless OUT/NAME already holds the model.
train() {
  local kind=$1 name=$2; shift 2
  local file=model.safetensors again=(--overwrite)
  [ "$kind" = classifier ] && file=classifier.safetensors again=()  # (it always starts afresh)
  if [ -f "$OUT/$name/$file" ]; then
    say "$name: trained already ($OUT/$name)"
    return
  fi
  say "training $name"
  "$DIFFUSE" train "$kind" --data "$DATA" --out "$OUT/$name" "${again[@]}" "$@" > "$OUT/$name.log" 2>&1 ||
    die "training $name failed: see $OUT/$name.log"
  # the thread count it trained with: its minutes on the page depend on it, a rerun may differ
  echo "${OMP_NUM_THREADS:-$(nproc)}" > "$OUT/$name.threads"
}

# A DDPM of the demo's shape (configs/mnist-demo.cfg: v-prediction, ch 16, linear schedule),
# trained as the papers train: t uniform over the T steps, batch 64, lr 0.002 (pinned here,
# so that the demo's own recipe can change without changing these runs), with the changes
# a table asks for. No guide (the demo's autoguidance): the papers sample their models alone.
PAPER_TRAINING=(--t-sampling uniform --batch 64 --lr 0.002 --guide-at 0)
train_ddpm() {
  local name=$1; shift
  train ddpm "$name" --config configs/mnist-demo.cfg "${PAPER_TRAINING[@]}" "${SHRINK[@]}" "$@"
}

# ---- the tables -----------------------------------------------------------------------------

# The judge: the classifier and what it says of real, blurred and noise images (the scale).
table_judge() {
  train classifier classifier "${CLF_ARGS[@]}"
  local out
  for ref in real blur noise; do
    out=$("$DIFFUSE" eval --classifier "$CLF" --reference "$ref" --count "$N" --json)
    put "judge_${ref}_rec" "$(pct "$(echo "$out" | json recognisable)")"
    put "judge_${ref}_fid" "$(num "$(echo "$out" | json classifier_fid)")"
  done
}

# DDIM (Song et al. 2021), Table 1 at two training lengths, and Figures 5 and 6.
table_ddim() {
  train_ddpm eps-linear --prediction eps --steps "$STEPS"
  train_ddpm eps-short --prediction eps --steps "$SHORT_STEPS"
  local length run S eta k
  for length in short long; do
    run=eps-linear
    [ "$length" = short ] && run=eps-short
    for S in 10 20 50 100; do
      k=ddim_${length}_S$S
      for eta in 0 0.2 0.5 1; do
        sample_judge "${k}_eta${eta/./}" "$run" "$N_SWEEP" --sampler ddim --steps "$S" --eta "$eta"
      done
      # DDIM's sigma-hat row: ancestral sampling with the larger variance beta on the respaced process
      sample_judge "${k}_sigmahat" "$run" "$N_SWEEP" --sampler ddpm --variance beta --steps "$S"
      # what eta = 1 costs against eta = 0 (the paper: positive, shrinking as S grows)
      difference "${k}_gap" "${k}_eta1_fid" "${k}_eta0_fid"
      magnitude "${k}_absgap" "${k}_gap"
    done
  done
  mkdir -p "$PICTURES"
  "$PATHS" consistency "$OUT/eps-linear/model.safetensors" "$PICTURES/ddim-consistency.png" 8 3 10,20,50,100 |
    while read -r key value; do put "ddim_consistency_$key" "$value"; done
  "$PATHS" slerp "$OUT/eps-linear/model.safetensors" "$PICTURES/ddim-interpolation.png" 4 5 50 > /dev/null
  put ddim_long_train_minutes "$(minutes_of eps-linear)"
  put ddim_short_train_minutes "$(minutes_of eps-short)"
}

# Why eta = 1 beats eta = 0 in the DDIM table here: the corners of the sweep (S = 10 and
# 100, eta = 0 and 1) with one suspect changed at a time: x_0 clipping off, and the target
# (v instead of eps, the DDPM table's v model). The spacing is not a suspect: the sweep
# already uses trailing spacing, whose first step is at t = T - 1.
table_eta() {
  train_ddpm eps-linear --prediction eps --steps "$STEPS"
  train_ddpm v-linear --prediction v --steps "$STEPS"
  local S eta
  for S in 10 100; do
    sample_judge "eta_eps_S${S}_noclip" eps-linear "$N_SWEEP" --sampler ddim --steps "$S" --eta 0 --no-clip
    for eta in 0 1; do
      sample_judge "eta_v_S${S}_eta$eta" v-linear "$N_SWEEP" --sampler ddim --steps "$S" --eta "$eta"
    done
    difference "eta_v_S${S}_gap" "eta_v_S${S}_eta1_fid" "eta_v_S${S}_eta0_fid"
  done
}

# Improved DDPM (Nichol & Dhariwal 2021): linear vs cosine schedule at the same budget, and
# what is lost when the reverse process starts k% of the way down (sec. 3.2, Fig. 4).
table_iddpm() {
  train_ddpm eps-linear --prediction eps --steps "$STEPS"
  train_ddpm eps-cosine --prediction eps --schedule cosine --steps "$STEPS"
  sample_judge iddpm_linear eps-linear "$N" --sampler ddim --steps 50
  sample_judge iddpm_cosine eps-cosine "$N" --sampler ddim --steps 50
  local schedule k out
  for schedule in linear cosine; do
    for k in 0 10 20 30 50; do
      out=$("$PATHS" skip "$OUT/eps-$schedule/model.safetensors" "$OUT/samples/skip-$schedule-$k.npy" \
        "$N_SWEEP" 1 50 "$(awk -v k="$k" 'BEGIN { print k / 100 }')")
      put "iddpm_${schedule}_skip${k}_alphabar" "$(echo "$out" | sed -n 's/^alpha_bar_start //p')"
      judge "iddpm_${schedule}_skip${k}" "$OUT/samples/skip-$schedule-$k.npy"
      difference "iddpm_${schedule}_skip${k}_cost" "iddpm_${schedule}_skip${k}_fid" "iddpm_${schedule}_skip0_fid"
    done
  done
}

# DDPM (Ho et al. 2020), Table 2's question: what should the network predict? eps (L_simple),
# x_0, or v (Salimans & Ho 2022), at the same budget.
table_ddpm() {
  train_ddpm eps-linear --prediction eps --steps "$STEPS"
  train_ddpm x0-linear --prediction x0 --steps "$STEPS"
  train_ddpm v-linear --prediction v --steps "$STEPS"
  local p
  for p in eps x0 v; do sample_judge "ddpm_$p" "$p-linear" "$N" --sampler ddim --steps 50; done
}

# Classifier-free guidance (Ho & Salimans 2022): the sweep of w.
table_cfg() {
  train_ddpm class-cond --cond class --cond-mode add --steps "$STEPS"
  local w samples
  mkdir -p "$OUT/samples" "$PICTURES"
  for w in 0 1 2 3 5 7; do
    samples=$OUT/samples/cfg-w$w.npy
    "$DIFFUSE" sample --run "$OUT/class-cond" --n "$N_SWEEP" --seed 1 --class all --guidance "$w" --out "$samples" > /dev/null
    judge "cfg_w$w" "$samples" "${samples%.npy}.labels.npy"
  done
  "$DIFFUSE" sample --run "$OUT/class-cond" --seed 1 --sweep --out "$PICTURES/cfg-sweep.png" > /dev/null
  lowest cfg_best_fid_w cfg_w _fid 0 1 2 3 5 7
}

# Latent diffusion (Rombach et al. 2022), Fig. 6's question: how much to compress. The same
# UNet recipe and number of steps in pixel space (f = 1) and on the latents of autoencoders
# with f = 2 and f = 4.
table_ldm() {
  train_ddpm v-linear --prediction v --steps "$STEPS"
  train vae vae-f2 --config configs/mnist-vae.cfg --mults 1,2 --z-channels 2 --steps "$VAE_STEPS" "${VAE_SHRINK[@]}"
  train vae vae-f4 --config configs/mnist-vae.cfg --mults 1,2,2 --z-channels 4 --steps "$VAE_STEPS" "${VAE_SHRINK[@]}"
  local f run start
  for f in 2 4; do
    train ldm "ldm-f$f" --config configs/mnist-demo.cfg --vae "$OUT/vae-f$f" --mults auto --attn-res auto \
      --prediction v --steps "$STEPS" "${SHRINK[@]}"
    put "ldm_f${f}_psnr" "$(psnr_of "vae-f$f")"
  done
  for f in 1 2 4; do
    run=ldm-f$f
    [ "$f" = 1 ] && run=v-linear
    put "ldm_f${f}_train_minutes" "$(minutes_of "$run")"
    put "ldm_f${f}_images_per_s" "$(awk -v s="$(seconds_of $run)" -v n="$STEPS" -v b="$(setting_of $run batch)" \
      'BEGIN { printf "%.0f", n * b / s }')"
    start=$(date +%s.%N)
    sample_judge "ldm_f$f" "$run" "$N" --sampler ddim --steps 50
    put "ldm_f${f}_sample_s" "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
  done
  lowest ldm_best_fid_f ldm_f _fid 1 2 4
}

# ---- main ----------------------------------------------------------------------------------

run_table() {
  local table=$1 start=$SECONDS
  MEASURED=$OUT/measurements/$table.txt
  : > "$MEASURED.tmp"
  MEASURED=$MEASURED.tmp
  say "table $table"
  "table_$table"
  put "${table}_measured" "$(date -u '+%Y-%m-%d %H:%M UTC')"
  put "${table}_minutes" "$(awk -v s=$((SECONDS - start)) 'BEGIN { printf "%.1f", s / 60 }')"
  mv "$MEASURED" "$OUT/measurements/$table.txt"  # a table cut short leaves its last complete measurements
}

main() {
  local wanted=("$@") t
  [ ${#wanted[@]} -gt 0 ] || wanted=("${TABLES[@]}")
  for t in "${wanted[@]}"; do
    [[ " ${TABLES[*]} " == *" $t "* ]] || { echo "reproduce: unknown TABLE=$t (known: ${TABLES[*]})" >&2; exit 2; }
  done
  [ -x "$DIFFUSE" ] && [ -x "$PATHS" ] || die "$DIFFUSE and $PATHS are needed: make all $PATHS"
  mkdir -p "$OUT/measurements"
  # The judge is measured with every call: every table needs its classifier.
  [[ " ${wanted[*]} " == *" judge "* ]] || wanted=(judge "${wanted[@]}")
  {
    echo "machine_cpu $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
    echo "machine_cores $(env -u OMP_NUM_THREADS nproc)"
    echo "machine_threads ${OMP_NUM_THREADS:-$(env -u OMP_NUM_THREADS nproc)}"
    echo "setup_train_threads $(cat "$OUT"/*.threads 2>/dev/null | sort -u | paste -sd/ | grep . || echo "as in this call")"
    echo "machine_date $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine_mode $([ "$MINI" = 1 ] && echo "miniature (MINI=1: tiny models, not the papers' comparison)" || echo full)"
    echo "setup_steps $STEPS"
    echo "setup_short_steps $SHORT_STEPS"
    echo "setup_vae_steps $VAE_STEPS"
    echo "setup_n $N"
    echo "setup_n_sweep $N_SWEEP"
  } > "$OUT/measurements/machine.txt"
  for t in "${wanted[@]}"; do run_table "$t"; done
  local never=()
  for t in "${TABLES[@]}"; do [ -f "$OUT/measurements/$t.txt" ] || never+=("$t"); done
  if [ ${#never[@]} -gt 0 ]; then
    echo "reproduce: $PAGE not written: the page needs every table, and these were never measured in $OUT:" \
      "${never[*]} (make reproduce, or TABLE=\"${never[*]}\")" >&2
    exit 1
  fi
  bash reproduce/render.sh reproduce/reproductions.md.in "$PAGE" "$OUT"/measurements/*.txt
  say "wrote $PAGE"
}

main "$@"
