#!/usr/bin/python3
"""bench/conv_torch.py: torch.nn.functional.conv2d forward and forward+backward (float32,
CPU), the twin of bench/conv.cpp: same shapes, same method, same output format.

    /usr/bin/python3 bench/conv_torch.py [--threads 2] [--reps 7]

Output: '#' comment lines, then one line per shape:
    shape NAME FWD_MEDIAN_S FWDBWD_MEDIAN_S FWD_GFLOPS FWDBWD_GFLOPS REPS
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = [  # name, N, C, K, H, W; 3x3, stride 1, padding 1 (keep in step with bench/conv.cpp)
    ("c32_28", 128, 32, 32, 28, 28),
    ("c64_14", 128, 64, 64, 14, 14),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--reps", type=int, default=7)
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"# impl torch {torch.__version__} F.conv2d (mkldnn {torch.backends.mkldnn.is_available()})")
    print(f"# threads {torch.get_num_threads()}")
    print("# columns: shape NAME FWD_MEDIAN_S FWDBWD_MEDIAN_S FWD_GFLOPS FWDBWD_GFLOPS REPS")
    torch.manual_seed(1)
    for name, N, C, K, H, W in SHAPES:
        x = torch.randn(N, C, H, W, requires_grad=True)
        w = torch.randn(K, C, 3, 3, requires_grad=True)
        b = torch.randn(K, requires_grad=True)
        gy = torch.randn(N, K, H, W)
        flop = 2.0 * N * K * C * 9 * H * W
        fwd, fwdbwd = [], []
        for r in range(args.reps + 1):  # r == 0: warm-up
            with torch.no_grad():
                t0 = time.perf_counter()
                y = F.conv2d(x, w, b, padding=1)
                t = time.perf_counter() - t0
            if r > 0:
                fwd.append(t)
            x.grad = w.grad = b.grad = None
            t0 = time.perf_counter()
            y = F.conv2d(x, w, b, padding=1)
            y.backward(gy)
            t = time.perf_counter() - t0
            if r > 0:
                fwdbwd.append(t)
        f, fb = statistics.median(fwd), statistics.median(fwdbwd)
        print(f"shape {name} {f:.6e} {fb:.6e} {flop / f / 1e9:.1f} {3 * flop / fb / 1e9:.1f} {args.reps}", flush=True)


if __name__ == "__main__":
    main()
