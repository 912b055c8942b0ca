#!/usr/bin/python3
"""bench/unet_torch_bench.py: PyTorch's side of the UNet benchmark, for bench/run_unet.sh;
the twin of bench/unet.cpp (same options, same method, same output lines), on the
PyTorch UNet of bench/unet_torch.py (the same network, names and shapes as ours).

One configuration per process, so that ru_maxrss is that configuration's peak:
    --mode train   one training step at --batch B: t ~ U{0..999}, eps ~ N(0, I),
                   x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (DDPM eq. 4),
                   loss = F.mse_loss(model(x_t, t), eps) (L_simple), backward, Adam step
                   (lr 2e-4); model.train(). Warm-up, then reps = clamp(target / t_warmup,
                   3, 1000) steps timed one by one, the median.
    --mode sample  DDIM (Song et al. 2021, eq. 12, eta 0) with --steps S model calls on B
                   images, "linear" schedule, T = 1000, the sub-sequence t_i = floor(i T / S)
                   (as diffusion/sampling_math.h), model.eval() under torch.no_grad(); one
                   untimed forward pass, then the whole loop timed once.

Output: '#' lines, then "train BATCH MEDIAN_S REPS MIN_S" or "sample BATCH STEPS SECONDS",
then "mem PEAK_RSS_KB START_RSS_KB" (ru_maxrss; VmRSS once torch is imported).

    /usr/bin/python3 bench/unet_torch_bench.py --mode train --batch 64 [--quick] [--threads 2]
    /usr/bin/python3 bench/unet_torch_bench.py --mode sample --batch 64 --steps 50 [--ch 64 ...]
"""
import argparse
import math
import os
import resource
import sys
import time

import bench_common as bc


def rss_now_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def int_list(s):
    return tuple(int(v) for v in s.split(",") if v)


def linear_alpha_bar(torch, T=1000):
    """alpha_bar_t for beta linear from 1e-4 to 0.02 (diffusion/schedule.h), float64, t = 0..T-1."""
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def ddim_sample(torch, model, x, alpha_bar, steps):
    """DDIM eq. 12 with eta = 0, walking t_{S-1} -> ... -> t_0 -> x_0 (alpha_bar(-1) = 1):
    x_prev = sqrt(ab_prev) (x - sqrt(1 - ab) eps) / sqrt(ab) + sqrt(1 - ab_prev) eps."""
    T, B = len(alpha_bar), x.shape[0]
    ts = [i * T // steps for i in range(steps)]
    for i in reversed(range(steps)):
        ab = alpha_bar[ts[i]].item()
        ab_prev = alpha_bar[ts[i - 1]].item() if i > 0 else 1.0
        eps = model(x, torch.full((B,), ts[i], dtype=torch.int64))
        x0 = (x - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)
        x = math.sqrt(ab_prev) * x0 + math.sqrt(1.0 - ab_prev) * eps
    return x


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["train", "sample"], required=True)
    p.add_argument("--batch", type=int, default=0, help="default 128 for train, 64 for sample")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps for sample")
    p.add_argument("--quick", action="store_true", help="the fewest timed training steps (3)")
    bc.add_min_time(p, "configuration (training steps)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all cores)")
    p.add_argument("--ch", type=int, default=32)
    p.add_argument("--mults", type=int_list, default=(1, 2, 2))
    p.add_argument("--res-blocks", type=int, default=2)
    p.add_argument("--attn-res", type=int_list, default=(7,))
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--groups", type=int, default=8)
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--in-channels", type=int, default=1)
    args = p.parse_args()
    target = args.min_time if args.min_time else (0.0 if args.quick else 10.0)
    batch = args.batch or (128 if args.mode == "train" else 64)

    torch = bc.import_torch("unet_torch_bench.py")
    import torch.nn.functional as F
    from unet_torch import UNet, UNetConfig, num_parameters
    start_rss = rss_now_kb()

    threads = bc.set_threads(torch, args.threads)
    c = UNetConfig(in_channels=args.in_channels, image_size=args.image_size, ch=args.ch, mults=args.mults,
                   num_res_blocks=args.res_blocks, attn_res=args.attn_res, heads=args.heads, dropout=args.dropout,
                   groups=args.groups)
    torch.manual_seed(1234)
    model = UNet(c)
    print("# impl torch %s bench/unet_torch.py UNet, torch.optim.Adam, DDIM loop, float32, CPU" % torch.__version__)
    print("# config ch %d, mults %s, %d res blocks, attention at %s, %d head(s), dropout %g, %d groups, "
          "image %dx%dx%d; %d parameters"
          % (c.ch, ",".join(map(str, c.mults)), c.num_res_blocks, ",".join(map(str, c.attn_res)) or "none", c.heads,
             c.dropout, c.groups, c.in_channels, c.image_size, c.image_size, num_parameters(model)))
    print("# threads %s OPENBLAS_NUM_THREADS=%s; ATen CPU capability %s; mkldnn enabled=%s"
          % (threads, os.environ.get("OPENBLAS_NUM_THREADS", "unset"), bc.cpu_capability(torch),
             torch.backends.mkldnn.enabled))
    print("# method train: warm-up then median of >= 3 timed steps, target %.0f s; "
          "sample: one timed run after one warm-up forward" % target)
    print("# columns: train BATCH MEDIAN_S REPS MIN_S | sample BATCH STEPS SECONDS | mem PEAK_RSS_KB START_RSS_KB")
    sys.stdout.flush()

    alpha_bar = linear_alpha_bar(torch)
    shape = (batch, c.in_channels, c.image_size, c.image_size)
    if args.mode == "train":
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=2e-4)
        x0 = torch.rand(shape) * 2.0 - 1.0  # stands in for a batch of images in [-1, 1]
        sqrt_ab, sqrt_1mab = alpha_bar.sqrt().float(), (1.0 - alpha_bar).sqrt().float()
        losses = []

        def step():
            t = torch.randint(0, len(alpha_bar), (batch,))
            eps = torch.randn(shape)
            xt = sqrt_ab[t].view(-1, 1, 1, 1) * x0 + sqrt_1mab[t].view(-1, 1, 1, 1) * eps
            loss = F.mse_loss(model(xt, t), eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())

        med, reps, mn = bc.measure(target, lambda: None, step)
        if abs(losses[0] - 1.0) >= 0.1:  # conv_out starts at zero: mean(eps^2) ~ 1
            sys.exit("unet_torch_bench.py: first training loss %g, expected ~1" % losses[0])
        print("train %d %.6e %d %.6e" % (batch, med, reps, mn))
    else:
        model.eval()
        x_T = torch.randn(shape)
        with torch.no_grad():
            model(x_T, torch.full((batch,), 999, dtype=torch.int64))
            t0 = bc.clock()
            x = ddim_sample(torch, model, x_T, alpha_bar, args.steps)
            seconds = bc.clock() - t0
        if not torch.isfinite(x).all():
            sys.exit("unet_torch_bench.py: a sample is not finite")
        print("sample %d %d %.6e" % (batch, args.steps, seconds))
    print("mem %d %d" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, start_rss))


if __name__ == "__main__":
    main()
