#!/usr/bin/python3
"""bench/gemm_torch.py: GEMM throughput of torch.mm (float32, CPU), for bench/run_gemm.sh.

The same shapes, timing method and output format as bench/gemm.cpp, so the two compare
line by line: A (M, K) and B (K, N) allocated once; each timed call is c = torch.mm(a, b)
with its output allocation; warm-up (one call, two under 50 ms), then
reps = clamp(target / t_warmup, 3, 1000) calls timed one by one; the median is reported
with GFLOP/s = 2 M N K / median / 1e9.

Output: comment lines start with '#'; one line per shape:
    shape NAME M K N MEDIAN_S GFLOPS REPS MIN_S

Run it with Debian's interpreter, which has python3-torch: /usr/bin/python3.
    /usr/bin/python3 bench/gemm_torch.py [--quick] [--shapes sq1024,conv64] [--min-time S]
"""
import argparse
import os
import re
import sys

import bench_common as bc

SHAPES = [  # name, M, K, N (keep in step with kShapes in bench/gemm.cpp)
    ("sq256", 256, 256, 256),
    ("sq512", 512, 512, 512),
    ("sq1024", 1024, 1024, 1024),
    ("sq2048", 2048, 2048, 2048),
    ("conv64", 64, 576, 100352),
    ("conv128", 128, 1152, 25088),
]


def blas_info(torch):
    """What torch.mm runs on: BLAS_INFO from the build config, and the BLAS library
    actually mapped into this process (Debian's torch links the libblas.so.3
    alternative, usually OpenBLAS)."""
    config = torch.__config__.show()
    m = re.search(r"BLAS_INFO=([^,\s]+)", config)
    build_blas = m.group(1) if m else "?"
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path)
                if re.search(r"blas|mkl|blis", name, re.I):
                    libs.add(path)
    except OSError:
        pass
    detail = ""
    for path in sorted(libs):
        if "openblas" in os.path.basename(path):
            try:
                import ctypes

                lib = ctypes.CDLL(path)
                lib.openblas_get_config.restype = ctypes.c_char_p
                lib.openblas_get_corename.restype = ctypes.c_char_p
                detail = " (%s; core %s; %d threads)" % (
                    lib.openblas_get_config().decode(),
                    lib.openblas_get_corename().decode(),
                    lib.openblas_get_num_threads(),
                )
            except (OSError, AttributeError):
                pass
            break
    return build_blas, ", ".join(sorted(libs)) or "none found in /proc/self/maps", detail


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bc.add_quick(p, "shape")
    p.add_argument("--shapes", default="", help="a comma-separated subset of: " + ",".join(s[0] for s in SHAPES))
    bc.add_min_time(p, "shape")
    args = p.parse_args()
    target = bc.target_of(args)
    wanted = bc.wanted_names("gemm_torch.py", "shape", args.shapes, [s[0] for s in SHAPES])

    torch = bc.import_torch("gemm_torch.py")
    threads = bc.set_threads(torch, os.cpu_count())
    torch.set_grad_enabled(False)

    # A first product so the BLAS library is loaded and its thread pool exists.
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    build_blas, libs, detail = blas_info(torch)
    print("# impl torch.mm (torch %s, float32, CPU)" % torch.__version__)
    print("# threads %s" % threads)
    print("# blas BLAS_INFO=%s lib=%s%s" % (build_blas, libs, detail))
    print("# cpu_capability %s (ATen's own kernels; torch.mm itself runs in the BLAS)" % bc.cpu_capability(torch))
    bc.print_method(target, "shape", "shape NAME M K N MEDIAN_S GFLOPS REPS MIN_S")

    gen = torch.Generator().manual_seed(1234)
    for name, M, K, N in SHAPES:
        if wanted and name not in wanted:
            continue
        a = torch.randn(M, K, generator=gen)
        b = torch.randn(K, N, generator=gen)
        # Each output is freed outside the timed region, as bench/gemm.cpp does.
        med, reps, mn = bc.measure(target, lambda: None, lambda: torch.mm(a, b))
        gflops = 2.0 * M * N * K / med / 1e9
        print("shape %s %d %d %d %.6e %.2f %d %.6e" % (name, M, K, N, med, gflops, reps, mn))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
