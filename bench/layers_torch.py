#!/usr/bin/python3
"""bench/layers_torch.py: PyTorch's layer ops, forward and forward+backward (float32, CPU),
for bench/run_layers.sh; the twin of bench/layers.cpp: same rows, same method, same output.

Rows (batch 128; keep in step with kRows in bench/layers.cpp):
    conv1_28   F.conv2d 3x3 pad 1,  1 -> 32 ch at 28x28
    conv32_28  F.conv2d 3x3 pad 1, 32 -> 32 ch at 28x28
    conv64_14  F.conv2d 3x3 pad 1, 64 -> 64 ch at 14x14
    gn32_28    F.group_norm, 8 groups, weight and bias, x (128, 32, 28, 28)
    gn64_14    F.group_norm, 8 groups, weight and bias, x (128, 64, 14, 14)
    gnsilu32_28, gnsilu64_14   F.silu(F.group_norm(...)) on the same shapes (PyTorch runs
               them as two ops; ours is one, td::group_norm_silu)
    attn64_49  softmax(q k^T / sqrt(16)) v written out: torch.matmul, * scale, softmax,
               torch.matmul (torch 1.13 has no F.scaled_dot_product_attention), the same
               three steps as td::scaled_dot_product_attention; q k v (128, 4, 49, 16)
Every input requires grad. Modes, each measured on its own:
    fwd      y = op(inputs) under torch.no_grad()
    fwdbwd   y = op(inputs); y.backward(gy), gy a fixed upstream gradient; the inputs'
             .grad set to None before each call, outside the timed region
Method: warm-up (one call, two under 50 ms), then reps = clamp(target / t_warmup, 3, 1000)
calls timed one by one; the median (and the fastest) is reported. Outputs and gradients
are freed outside the timed region.

Output: comment lines start with '#'; one line per row and mode:
    row NAME MODE MEDIAN_S REPS MIN_S

Run it with Debian's interpreter, which has python3-torch:
    /usr/bin/python3 bench/layers_torch.py [--quick] [--rows conv32_28,gn64_14] [--modes fwd]
                                           [--min-time S] [--threads N]
"""
import argparse
import math
import os
import re
import sys

import bench_common as bc

ROWS = [  # name, kind, N, C, K, H, W (as in bench/layers.cpp)
    ("conv1_28", "conv", 128, 1, 32, 28, 28),
    ("conv32_28", "conv", 128, 32, 32, 28, 28),
    ("conv64_14", "conv", 128, 64, 64, 14, 14),
    ("gn32_28", "gn", 128, 32, 8, 28, 28),  # K: the number of groups
    ("gn64_14", "gn", 128, 64, 8, 14, 14),
    ("gnsilu32_28", "gnsilu", 128, 32, 8, 28, 28),
    ("gnsilu64_14", "gnsilu", 128, 64, 8, 14, 14),
    ("attn64_49", "attn", 128, 4, 0, 49, 16),  # q k v (N, C heads, H tokens, W head dim)
]


def kernels_used(torch, fn):
    """The ATen convolution kernels one forward+backward runs: which backend does the work."""
    with torch.autograd.profiler.profile() as prof:
        fn()
    names = sorted({e.name for e in prof.function_events
                    if re.search(r"mkldnn|thnn|slow_conv|nnpack|winograd|convolution_backward", e.name)})
    return ", ".join(names) or "?"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bc.add_quick(p, "row and mode")
    p.add_argument("--rows", default="", help="a comma-separated subset of: " + ",".join(r[0] for r in ROWS))
    p.add_argument("--modes", default="fwd,fwdbwd", choices=["fwd", "fwdbwd", "fwd,fwdbwd", "fwdbwd,fwd"],
                   help="fwd, fwdbwd or both (the default)")
    bc.add_min_time(p, "row and mode")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all cores)")
    args = p.parse_args()
    target = bc.target_of(args)
    wanted = bc.wanted_names("layers_torch.py", "row", args.rows, [r[0] for r in ROWS])

    torch = bc.import_torch("layers_torch.py")
    import torch.nn.functional as F

    threads = bc.set_threads(torch, args.threads)
    config = torch.__config__.show()
    dnn = re.search(r"MKL-DNN v(\S+)", config)
    par = re.search(r"ATen parallel backend: (\S+)", torch.__config__.parallel_info())
    print("# impl torch %s F.conv2d, F.group_norm, F.silu, matmul+softmax attention, float32, CPU" % torch.__version__)
    print("# threads %s parallel=%s" % (threads, par.group(1) if par else "?"))
    print("# backend mkldnn(oneDNN %s) available=%s enabled=%s; mkl=%s; openmp=%s; ATen CPU capability %s"
          % (dnn.group(1) if dnn else "?", torch.backends.mkldnn.is_available(), torch.backends.mkldnn.enabled,
             torch.backends.mkl.is_available(), torch.backends.openmp.is_available(), bc.cpu_capability(torch)))
    bc.print_method(target, "row and mode", "row NAME MODE MEDIAN_S REPS MIN_S")

    gen = torch.Generator().manual_seed(1234)
    shown_conv = False
    for name, kind, N, C, K, H, W in ROWS:
        if wanted and name not in wanted:
            continue
        if kind == "conv":
            inputs = [torch.randn(N, C, H, W, generator=gen),
                      torch.randn(K, C, 3, 3, generator=gen) / math.sqrt(9 * C),
                      torch.randn(K, generator=gen)]
            gy = torch.randn(N, K, H, W, generator=gen)

            def op(x, w, b):
                return F.conv2d(x, w, b, padding=1)
        elif kind in ("gn", "gnsilu"):
            inputs = [torch.randn(N, C, H, W, generator=gen),
                      torch.randn(C, generator=gen) * 0.1 + 1.0,
                      torch.randn(C, generator=gen)]
            gy = torch.randn(N, C, H, W, generator=gen)

            def op(x, g, b, groups=K, silu=(kind == "gnsilu")):
                y = F.group_norm(x, groups, g, b, eps=1e-5)
                return F.silu(y) if silu else y
        else:
            inputs = [torch.randn(N, C, H, W, generator=gen) for _ in range(3)]
            gy = torch.randn(N, C, H, W, generator=gen)
            scale = 1.0 / math.sqrt(W)

            def op(q, k, v, scale=scale):
                scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # (N, heads, L, L)
                return torch.matmul(torch.softmax(scores, -1), v)      # (N, heads, L, d)
        for t in inputs:
            t.requires_grad_()

        def clear_grads():
            for t in inputs:
                t.grad = None

        def fwd():
            with torch.no_grad():
                return op(*inputs)

        def fwdbwd():
            y = op(*inputs)
            y.backward(gy)
            return y

        if kind == "conv" and not shown_conv:
            print("# conv kernels (profiler, one fwd+bwd): %s" % kernels_used(torch, fwdbwd))
            clear_grads()
            shown_conv = True
        modes = args.modes.split(",")
        if "fwd" in modes:
            med, reps, mn = bc.measure(target, lambda: None, fwd)
            print("row %s fwd %.6e %d %.6e" % (name, med, reps, mn))
            sys.stdout.flush()
        if "fwdbwd" not in modes:
            continue
        med, reps, mn = bc.measure(target, clear_grads, fwdbwd)
        assert all(t.grad is not None for t in inputs)
        print("row %s fwdbwd %.6e %d %.6e" % (name, med, reps, mn))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
