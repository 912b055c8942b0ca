#!/usr/bin/python3
"""bench/layers_torch.py: PyTorch's layer ops, forward and backward (float32, CPU), for
bench/run_layers.sh; the twin of bench/layers.cpp: same rows, same method, same output.

Rows (batch 128; keep in step with kRows in bench/layers.cpp, whose header and --list say
where in the demo and reference UNets each conv shape is used):
    conv rows  F.conv2d, an R x R kernel with padding R // 2: c3_48_16_28 is 3x3, 48 -> 16
               channels at 28x28; c3s2_ is 3x3 with stride 2; c1_ is 1x1. conv1_28,
               conv32_28 and conv64_14 are 3x3 convs 1 -> 32 at 28x28, 32 -> 32 at 28x28
               and 64 -> 64 at 14x14
    gn32_28    F.group_norm, 8 groups, weight and bias, x (128, 32, 28, 28)
    gn64_14    F.group_norm, 8 groups, weight and bias, x (128, 64, 14, 14)
    gnsilu32_28, gnsilu64_14   F.silu(F.group_norm(...)) on the same shapes (PyTorch runs
               them as two ops; ours is one, td::group_norm_silu)
    attn64_49  softmax(q k^T / sqrt(16)) v written out: torch.matmul, * scale, softmax,
               torch.matmul (torch 1.13 has no F.scaled_dot_product_attention), the same
               three steps as td::scaled_dot_product_attention; q k v (128, 4, 49, 16)
Modes, each measured on its own:
    fwd      y = op(inputs) under torch.no_grad()
    fwdbwd   y = op(inputs); y.backward(gy), gy a fixed upstream gradient, every input
             requiring grad
    bwd_dx   conv rows only: the same with only x requiring grad (autograd asks the
             convolution backward for dx alone)
    bwd_dw   conv rows only: only weight and bias require grad (dW and db alone)
    The inputs' .grad are set to None before each call, outside the timed region.
Method: warm-up (one call, two under 50 ms), then reps = clamp(target / t_warmup, 3, 1000)
calls timed one by one; the median (and the fastest) is reported. Outputs and gradients
are freed outside the timed region.

Output: comment lines start with '#'; one line per row and mode:
    row NAME MODE MEDIAN_S REPS MIN_S

Run it with Debian's interpreter, which has python3-torch:
    /usr/bin/python3 bench/layers_torch.py [--quick] [--rows conv32_28,gn64_14] [--modes fwd,bwd_dx]
                                           [--min-time S] [--threads N]
"""
import argparse
import math
import os
import re
import sys

import bench_common as bc


def conv(name, R, stride, C, K, H):
    """A conv row, batch 128: C -> K channels at H x H, an R x R kernel, padding R // 2."""
    return (name, "conv", 128, C, K, H, H, R, stride)


ROWS = [  # name, kind, N, C, K, H, W, R, stride (as in bench/layers.cpp)
    conv("conv1_28", 3, 1, 1, 32, 28),
    conv("conv32_28", 3, 1, 32, 32, 28),
    conv("conv64_14", 3, 1, 64, 64, 14),
    # the demo UNet's other 3x3 convs (stride 1)
    conv("c3_1_16_28", 3, 1, 1, 16, 28),
    conv("c3_16_16_28", 3, 1, 16, 16, 28),
    conv("c3_48_16_28", 3, 1, 48, 16, 28),
    conv("c3_32_16_28", 3, 1, 32, 16, 28),
    conv("c3_16_1_28", 3, 1, 16, 1, 28),
    conv("c3_16_32_14", 3, 1, 16, 32, 14),
    conv("c3_32_32_14", 3, 1, 32, 32, 14),
    conv("c3_64_32_14", 3, 1, 64, 32, 14),
    conv("c3_48_32_14", 3, 1, 48, 32, 14),
    conv("c3_32_32_7", 3, 1, 32, 32, 7),
    conv("c3_64_32_7", 3, 1, 64, 32, 7),
    # the reference UNet's other 3x3 convs (stride 1)
    conv("c3_96_32_28", 3, 1, 96, 32, 28),
    conv("c3_64_32_28", 3, 1, 64, 32, 28),
    conv("c3_64_64_28", 3, 1, 64, 64, 28),
    conv("c3_32_1_28", 3, 1, 32, 1, 28),
    conv("c3_32_64_14", 3, 1, 32, 64, 14),
    conv("c3_128_64_14", 3, 1, 128, 64, 14),
    conv("c3_96_64_14", 3, 1, 96, 64, 14),
    conv("c3_64_64_7", 3, 1, 64, 64, 7),
    conv("c3_128_64_7", 3, 1, 128, 64, 7),
    # the downsampling: 3x3, stride 2
    conv("c3s2_16_16_28", 3, 2, 16, 16, 28),
    conv("c3s2_32_32_14", 3, 2, 32, 32, 14),
    conv("c3s2_32_32_28", 3, 2, 32, 32, 28),
    conv("c3s2_64_64_14", 3, 2, 64, 64, 14),
    # the ResBlocks' nin_shortcut: 1x1
    conv("c1_16_32_14", 1, 1, 16, 32, 14),
    conv("c1_48_16_28", 1, 1, 48, 16, 28),
    conv("c1_32_16_28", 1, 1, 32, 16, 28),
    conv("c1_64_32_14", 1, 1, 64, 32, 14),
    conv("c1_48_32_14", 1, 1, 48, 32, 14),
    conv("c1_64_32_7", 1, 1, 64, 32, 7),
    conv("c1_32_64_14", 1, 1, 32, 64, 14),
    conv("c1_96_32_28", 1, 1, 96, 32, 28),
    conv("c1_64_32_28", 1, 1, 64, 32, 28),
    conv("c1_128_64_14", 1, 1, 128, 64, 14),
    conv("c1_96_64_14", 1, 1, 96, 64, 14),
    conv("c1_128_64_7", 1, 1, 128, 64, 7),
    ("gn32_28", "gn", 128, 32, 8, 28, 28, 0, 0),  # K: the number of groups
    ("gn64_14", "gn", 128, 64, 8, 14, 14, 0, 0),
    ("gnsilu32_28", "gnsilu", 128, 32, 8, 28, 28, 0, 0),
    ("gnsilu64_14", "gnsilu", 128, 64, 8, 14, 14, 0, 0),
    ("attn64_49", "attn", 128, 4, 0, 49, 16, 0, 0),  # q k v (N, C heads, H tokens, W head dim)
]

# Which inputs require grad in each mode (inputs: x, weight, bias for a conv row); None:
# forward alone, under torch.no_grad(). bwd_dx and bwd_dw time conv rows only.
MODES = {
    "fwd": None,
    "fwdbwd": lambda i: True,
    "bwd_dx": lambda i: i == 0,
    "bwd_dw": lambda i: i > 0,
}
CONV_ONLY = ("bwd_dx", "bwd_dw")


def kernels_used(torch, fn):
    """The ATen convolution kernels one forward+backward runs: which backend does the work."""
    with torch.autograd.profiler.profile() as prof:
        fn()
    names = sorted({e.name for e in prof.function_events
                    if re.search(r"mkldnn|thnn|slow_conv|nnpack|winograd|convolution_backward", e.name)})
    return ", ".join(names) or "?"


def modes_of(text):
    """--modes: a comma-separated list of MODES' names."""
    modes = [m for m in text.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError("unknown mode %r (known: %s)" % (",".join(unknown), ", ".join(MODES)))
    return modes


def make_case(torch, F, gen, row):
    """A row's inputs (none requiring grad yet), the fixed upstream gradient and the op."""
    name, kind, N, C, K, H, W, R, stride = row
    if kind == "conv":
        inputs = [torch.randn(N, C, H, W, generator=gen),
                  torch.randn(K, C, R, R, generator=gen) / math.sqrt(C * R * R),
                  torch.randn(K, generator=gen)]
        OH, OW = [(n + 2 * (R // 2) - R) // stride + 1 for n in (H, W)]
        gy = torch.randn(N, K, OH, OW, generator=gen)

        def op(x, w, b):
            return F.conv2d(x, w, b, stride=stride, padding=R // 2)
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
    return inputs, gy, op


def time_mode(torch, target, mode, needs_grad, inputs, op, fwdbwd):
    """One row in one mode: (median s, reps, fastest s); asserts the backward left exactly
    the gradients the mode asks for."""
    for i, t in enumerate(inputs):
        t.requires_grad_(needs_grad is not None and needs_grad(i))

    def clear_grads():
        for t in inputs:
            t.grad = None

    if needs_grad is None:
        def fwd():
            with torch.no_grad():
                return op(*inputs)
        return bc.measure(target, clear_grads, fwd)
    result = bc.measure(target, clear_grads, fwdbwd)
    assert all((t.grad is not None) == needs_grad(i) for i, t in enumerate(inputs)), mode
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bc.add_quick(p, "row and mode")
    p.add_argument("--rows", default="", help="a comma-separated subset of: " + ",".join(r[0] for r in ROWS))
    p.add_argument("--modes", default=",".join(MODES), type=modes_of,
                   help="a comma-separated subset of %s (default: all); bwd_dx and bwd_dw time conv rows only"
                   % ", ".join(MODES))
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
    for row in ROWS:
        if wanted and row[0] not in wanted:
            continue
        inputs, gy, op = make_case(torch, F, gen, row)

        def fwdbwd():
            y = op(*inputs)
            y.backward(gy)
            return y

        if row[1] == "conv" and not shown_conv:
            for t in inputs:
                t.requires_grad_(True)
            print("# conv kernels (profiler, one fwd+bwd): %s" % kernels_used(torch, fwdbwd))
            shown_conv = True
        for mode, needs_grad in MODES.items():  # in MODES' order, whatever the order of --modes
            if mode not in args.modes or (mode in CONV_ONLY and row[1] != "conv"):
                continue
            med, reps, mn = time_mode(torch, target, mode, needs_grad, inputs, op, fwdbwd)
            print("row %s %s %.6e %d %.6e" % (row[0], mode, med, reps, mn))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
