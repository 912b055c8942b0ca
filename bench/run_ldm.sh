#!/usr/bin/env bash
# bench/run_ldm.sh: the latent-diffusion claim, measured. The same UNet width trained in
# pixel space (28 x 28 x 1, `train ddpm`) and in the latent space of a trained autoencoder
# (28/f x 28/f x z, `train ldm`), side by side: training images/s, the time to draw 64
# samples with DDIM-50 (decoding included), and the peak resident memory of each process.
#
#   bash bench/run_ldm.sh runs/mnist-vae [STEPS]      (STEPS: training steps timed, default 120)
#   make bench BENCH=ldm VAE=runs/mnist-vae
#
# Both runs: --ch $CH (default 32), 1 res block per level, 8 groups, no dropout, batch 64,
# attention at the lowest resolution; pixel: mults 1,2,2 (28, 14, 7); latent: one level
# (28/f cannot be halved for f = 4). The first 10 steps are not timed (warm-up). The
# quality each reaches in the same minutes comes from full runs (README, Latent diffusion).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
vae=${1:?usage: bench/run_ldm.sh VAE_RUN [STEPS]}
steps=${2:-120}
ch=${CH:-32}
bin=${DIFFUSE:-build/diffuse}
[ -x "$bin" ] || make --no-print-directory all
if [ ! -f "$vae/model.safetensors" ]; then
  echo "run_ldm: no autoencoder in $vae: training one first (configs/mnist-vae.cfg)" >&2
  bash scripts/get-data.sh mnist
  "$bin" train vae --config configs/mnist-vae.cfg --out "$vae" > /dev/null
fi
[ -x /usr/bin/time ] || bash scripts/install-deps.sh --bench
data=$(sed -n 's/^data = //p' "$vae/config.txt")
nmults=$(sed -n 's/^mults = //p' "$vae/config.txt" | tr ',' '\n' | wc -l)
f=$((1 << (nmults - 1)))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(--data "$data" --ch "$ch" --res-blocks 1 --groups 8 --dropout 0 --batch 64 --steps "$steps"
        --sample-every 1000000 --ckpt-every 1000000 --final-samples 1 --final-steps 1)

# time_of SECONDS_CSV: images/s over steps 11..STEPS from metrics.csv
imgs_per_s() {
  awk -F, -v s="$steps" 'NR > 1 && $1 == 10 { a = $6 } NR > 1 && $1 == s { b = $6 } END { printf "%.1f", (s - 10) * 64 / (b - a) }' "$1"
}

declare -A ips mem_train samp mem_samp
for kind in pixel latent; do
  if [ $kind = pixel ]; then
    args=(train ddpm --mults 1,2,2 --attn-res 7 --guide-at 0)  # sampled alone, as the latent model
  else
    args=(train ldm --vae "$vae" --mults 1 --attn-res $((28 / f)))
  fi
  echo "run_ldm: training $kind ($steps steps)..." >&2
  /usr/bin/time -f "%M" -o "$tmp/$kind.mem" "$bin" "${args[@]}" "${common[@]}" --out "$tmp/$kind" > "$tmp/$kind.log"
  ips[$kind]=$(imgs_per_s "$tmp/$kind/metrics.csv")
  mem_train[$kind]=$(( $(cat "$tmp/$kind.mem") / 1024 ))
  echo "run_ldm: sampling $kind (64 images, DDIM-50)..." >&2
  /usr/bin/time -f "%e %M" -o "$tmp/$kind.samp" "$bin" sample --run "$tmp/$kind" --n 64 --steps 50 --out "$tmp/$kind.png" > /dev/null
  read -r s m < "$tmp/$kind.samp"
  samp[$kind]=$s
  mem_samp[$kind]=$((m / 1024))
done

params() { sed -n 's/^model: UNet.*: \([0-9]*\) parameters.*/\1/p' "$1"; }
echo
echo "Pixel vs latent DDPM on $data, UNet ch $ch (autoencoder: $vae, f = $f); $(nproc) cores"
echo
echo "| | pixel (28x28) | latent ($((28 / f))x$((28 / f))) | latent / pixel |"
echo "| --- | --- | --- | --- |"
echo "| UNet parameters | $(params "$tmp/pixel.log") | $(params "$tmp/latent.log") | |"
echo "| training, images/s (batch 64) | ${ips[pixel]} | ${ips[latent]} | $(echo "scale=2; ${ips[latent]} / ${ips[pixel]}" | bc) |"
echo "| 64 samples, DDIM-50, s | ${samp[pixel]} | ${samp[latent]} | $(echo "scale=2; ${samp[latent]} / ${samp[pixel]}" | bc) |"
echo "| peak memory, training process, MB | ${mem_train[pixel]} | ${mem_train[latent]} | $(echo "scale=2; ${mem_train[latent]} / ${mem_train[pixel]}" | bc) |"
echo "| peak memory, sampling process, MB | ${mem_samp[pixel]} | ${mem_samp[latent]} | $(echo "scale=2; ${mem_samp[latent]} / ${mem_samp[pixel]}" | bc) |"
