"""bench/bench_common.py: what bench/gemm_torch.py and bench/layers_torch.py share: the
timing method (the twin of bench/timing.h), the common options, and torch's setup and
the '#' lines about how it runs.

Method: warm-up (one call, two under 50 ms), then reps = clamp(target / t_warmup, 3, 1000)
calls timed one by one; the median (and the fastest) is reported. What a call returns is
freed outside the timed region.
"""
import math
import os
import re
import statistics
import sys
import time


def clock():
    """Seconds: the wall clock, or with BENCH_CLOCK=cpu the process's CPU time (as
    bench/timing.h: with one thread, immune to what else the machine runs)."""
    return time.process_time() if os.environ.get("BENCH_CLOCK") == "cpu" else time.perf_counter()


def measure(target, prep, call):
    """prep() before each call, untimed; call() timed; its result freed after the clock stops.
    Returns (median seconds, reps, fastest seconds)."""

    def once():
        prep()
        t0 = clock()
        keep = call()
        t = clock() - t0
        del keep
        return t

    t_warm = once()
    if t_warm < 0.05:
        t_warm = once()
    reps = int(min(max(math.ceil(target / max(t_warm, 1e-7)), 3), 1000))
    times = [once() for _ in range(reps)]
    return statistics.median(times), reps, min(times)


def add_quick(parser, per):
    parser.add_argument("--quick", action="store_true", help="~0.1 s of timed calls per %s instead of ~0.5 s" % per)


def add_min_time(parser, per):
    parser.add_argument("--min-time", type=float, default=None, help="the time target per %s, in seconds" % per)


def target_of(args):
    """The time target in seconds: --min-time, else 0.1 with --quick, else 0.5."""
    return args.min_time if args.min_time else (0.1 if args.quick else 0.5)


def wanted_names(prog, what, arg, names):
    """The comma-separated subset in arg, each checked against names (exits on an unknown one)."""
    wanted = [w for w in arg.split(",") if w]
    for w in wanted:
        if w not in names:
            sys.exit("%s: unknown %s '%s' (known: %s)" % (prog, what, w, ", ".join(names)))
    return wanted


def import_torch(prog):
    try:
        import torch
    except ImportError:
        sys.exit("%s: no torch in %s (install python3-torch, run /usr/bin/python3)" % (prog, sys.executable))
    return torch


def set_threads(torch, n):
    """torch.set_num_threads(n) (Debian's build may start with 1 intra-op thread); returns
    the '# threads' line's common part: the default, the count set, the cores."""
    default_threads = torch.get_num_threads()
    torch.set_num_threads(n)
    return "torch_default=%d torch_set=%d cpu_count=%d" % (default_threads, torch.get_num_threads(), os.cpu_count())


def cpu_capability(torch):
    """ATen's CPU capability (the SIMD level of its own kernels), from the build config."""
    m = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    return m.group(1) if m else "?"


def print_method(target, per, columns):
    print("# method warm-up then median of reps, target %.2f s per %s" % (target, per))
    print("# columns: %s" % columns)
    sys.stdout.flush()
