"""tests/fixturelib.py: the machinery behind tests/make_fixtures.py.

How inputs are drawn (Spec and its helpers), what a Case is, and how a case becomes
files under tests/fixtures/<case>/. The case lists themselves live in
tests/make_fixtures.py (tensor ops) and tests/cases_*.py (one file per family of
layers), each exporting CASES.
"""
import os

import numpy as np
import torch
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")

# ---- how an input is drawn -------------------------------------------------------------
# Each helper returns a Spec: a function of nothing that draws a float64 or int64 tensor
# (from torch's global generator, seeded per case), and whether it is differentiable.

class Spec:
    def __init__(self, draw, diff):
        self.draw = draw  # () -> torch tensor
        self.diff = diff  # float input that gets a gradient (grad_in<k>.npy)


def randn(*shape):
    """Standard normal."""
    return Spec(lambda: torch.randn(shape, dtype=torch.float64), True)


def pos(*shape, lo=0.5, hi=2.0):
    """Uniform in [lo, hi): a positive base for log, sqrt, pow."""
    return Spec(lambda: lo + (hi - lo) * torch.rand(shape, dtype=torch.float64), True)


def away(*shape, kinks=(0.0,), margin=0.1):
    """Standard normal, redrawn until every element is >= margin from every kink
    (relu/abs at 0, clamp at its bounds, a divisor away from 0)."""
    def draw():
        x = torch.randn(shape, dtype=torch.float64)
        for _ in range(1000):
            bad = torch.zeros(shape, dtype=torch.bool)
            for k in kinks:
                bad |= (x - k).abs() < margin
            if not bad.any():
                return x
            x = torch.where(bad, torch.randn(shape, dtype=torch.float64), x)
        raise RuntimeError("away(): could not draw values away from the kinks")
    return Spec(draw, True)


def distinct(*shape, spacing=0.2):
    """A random permutation of evenly spaced values: no two elements are closer than
    `spacing`, so max/argmax have one clear winner and finite differences of max are
    smooth (gradcheck's step is 0.01)."""
    def draw():
        n = int(np.prod(shape)) if shape else 1
        v = (torch.randperm(n, dtype=torch.float64) - (n - 1) / 2.0) * spacing
        return v.reshape(shape)
    return Spec(draw, True)


def mask(*shape):
    """0.0 / 1.0 floats, a condition for where(): an input, never differentiated."""
    return Spec(lambda: (torch.rand(shape, dtype=torch.float64) < 0.5).to(torch.float64), False)


def small_ints(high, *shape):
    """Floats from {0, 1, ..., high-1}, so eq/gt/lt see ties; not differentiated."""
    return Spec(lambda: torch.randint(0, high, shape).to(torch.float64), False)


def index(high, *shape):
    """int64 indices, uniform in [0, high)."""
    return Spec(lambda: torch.randint(0, high, shape, dtype=torch.int64), False)


def index_values(values):
    """A fixed 1-D int64 index (to make repeated indices certain)."""
    return Spec(lambda: torch.tensor(values, dtype=torch.int64), False)


def nograd(spec):
    """A float input drawn like `spec` that does not require grad (a constant operand:
    the op's backward must skip it and still give the other inputs their gradients)."""
    return Spec(spec.draw, False)


class Case:
    def __init__(self, name, inputs, fn):
        self.name, self.inputs, self.fn = name, inputs, fn


def pieces_scaled(pieces, dim, scales):
    """cat of split/chunk pieces along `dim`, each times its own constant, so every
    piece's gradient is checked (and a wrong piece order or size shows)."""
    assert len(pieces) == len(scales), f"{len(pieces)} pieces but {len(scales)} scales"
    return torch.cat([p * s for p, s in zip(pieces, scales)], dim)


def split_cat(x, size, dim, scales):
    return pieces_scaled(torch.split(x, size, dim), dim, scales)


def chunk_cat(x, chunks, dim, scales):
    return pieces_scaled(torch.chunk(x, chunks, dim), dim, scales)


def softmax_manual(x, dim):
    e = torch.exp(x - torch.max(x, dim, keepdim=True).values)
    return e / e.sum(dim, keepdim=True)


F = torch.nn.functional

# ---- writing ---------------------------------------------------------------------------

def save(path, t):
    # np.array(order="C"), not np.ascontiguousarray: the latter turns a 0-d array into shape (1,)
    t = t.detach()
    arr = np.array(t.numpy(), dtype="<i8" if t.dtype == torch.int64 else "<f4", order="C", copy=True)
    assert arr.shape == tuple(t.shape)
    np.save(path, arr)


def seed_of(name):
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def make_case(case):
    torch.manual_seed(seed_of(case.name))
    inputs = []
    for spec in case.inputs:
        x = spec.draw()
        if x.dtype == torch.float64:
            x = x.to(torch.float32).to(torch.float64)  # stored as float32: use exactly those values
            x.requires_grad_(spec.diff)
        inputs.append(x)

    result = case.fn(*inputs)
    outs = list(result) if isinstance(result, tuple) else [result]
    out = outs[0]

    folder = os.path.join(FIXTURES, case.name)
    os.makedirs(folder)
    for k, x in enumerate(inputs):
        save(os.path.join(folder, f"in{k}.npy"), x)
    save(os.path.join(folder, "out.npy"), out)
    for k, extra in enumerate(outs[1:], start=1):
        save(os.path.join(folder, f"out{k}.npy"), extra)

    if not out.requires_grad:  # argmax, comparisons: no gradient to check
        return
    grad_out = torch.randn(out.shape, dtype=torch.float64).to(torch.float32).to(torch.float64)
    out.backward(grad_out)
    save(os.path.join(folder, "grad_out.npy"), grad_out)
    for k, (spec, x) in enumerate(zip(case.inputs, inputs)):
        if not spec.diff:
            continue
        if x.grad is None:
            raise RuntimeError(f"{case.name}: input {k} gets no gradient; draw it with a non-differentiable spec")
        save(os.path.join(folder, f"grad_in{k}.npy"), x.grad)


