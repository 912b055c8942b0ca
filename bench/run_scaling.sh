#!/usr/bin/env bash
# bench/run_scaling.sh: how the cost of a training step grows, ours against PyTorch:
# images/s and peak memory vs batch (16, 64, 256) and vs image size (28x28x1 as MNIST,
# 32x32x3 as CIFAR-10), for the demo UNet and the reference UNet.
#
#   bash bench/run_scaling.sh            (make bench BENCH=scaling)
#
# Four bench/run_unet.sh reports (one per network and image size), training only
# (SAMPLE_BATCH=0). Environment: ROUNDS (default 3), THREADS (default 2), BATCHES
# (default "16 64 256"), MIN_TIME (seconds of timed steps per configuration, default 3).
set -uo pipefail
cd "$(dirname "$0")/.."
BATCHES=${BATCHES:-16 64 256}
MIN_TIME=${MIN_TIME:-3}
# (attention at the lowest resolution: 7x7 for 28x28 images, 8x8 for 32x32)
DEMO_NET=(--ch 16 --mults 1,2,2 --res-blocks 1 --heads 1 --dropout 0 --groups 4)
REFERENCE_NET=(--ch 32 --mults 1,2,2 --res-blocks 2 --heads 1 --dropout 0.1 --groups 8)
for net in demo reference; do
  for image in "28 1" "32 3"; do
    read -r size channels <<< "$image"
    if [ $net = demo ]; then flags=("${DEMO_NET[@]}"); else flags=("${REFERENCE_NET[@]}"); fi
    echo "== the $net UNet at ${size}x${size}x${channels}"
    TRAIN_BATCHES="$BATCHES" SAMPLE_BATCH=0 bash bench/run_unet.sh build/bench_unet --min-time "$MIN_TIME" \
      --image-size "$size" --in-channels "$channels" --attn-res $((size / 4)) "${flags[@]}" || exit 1
    echo
  done
done
