#!/usr/bin/python3
"""tests/make_fixtures.py: PyTorch reference tensors for tests/test_ops_torch.cpp.

Regenerate (Debian's PyTorch, so /usr/bin/python3, not a pyenv python):

    /usr/bin/python3 tests/make_fixtures.py

It rewrites tests/fixtures/ from scratch: one folder per case,

    tests/fixtures/<case>/in0.npy, in1.npy, ...   inputs ('<f4' float32 or '<i8' int64)
    tests/fixtures/<case>/out.npy                 the output (float32, or int64 for argmax)
    tests/fixtures/<case>/out1.npy                a second output where there is one
                                                  (the int64 indices of max(dim))
    tests/fixtures/<case>/grad_out.npy            a random upstream gradient dL/d(out)
    tests/fixtures/<case>/grad_in0.npy, ...       dL/d(in_k) from out.backward(grad_out),
                                                  for every differentiable input k

and tests/fixtures/MANIFEST.txt with the case names, one per line. The tests never run
Python: the fixtures are committed.

How the numbers are made: each case seeds torch with a fixed per-case seed (a CRC of
its name), draws its inputs, rounds them to float32 and stores them; the reference
computation then runs in float64 on exactly those float32 values, and its results are
rounded to float32 only when saved. So a fixture is accurate to float32 rounding and
the C++ side, computing in float32, is compared against (nearly) the exact answer.

How to add a case:
  1. Append Case("my_case", [inputs...], lambda a, b: ...) to CASES below, under the
     family it belongs to. Inputs are drawn by the helpers just below (randn, pos,
     away, distinct, mask, small_ints, index, index_values, nograd); pick the one
     whose domain keeps the op smooth (a positive base for log/sqrt/pow, |x| >= 0.1
     away from a kink for relu/abs/clamp, well-separated values for max) so that the
     finite-difference gradcheck on the C++ side (step 0.01) is meaningful as well.
     The function gets float64 torch tensors (int64 for indices) and returns the
     output, or a tuple (out, out1) when a second output is to be checked.
  2. Add the C++ twin, under the same name, to the registry in tests/test_ops_torch.cpp.
     The tests fail loudly while a fixture has no C++ entry, or an entry no fixture.
  3. Run this script and commit tests/fixtures/.
Keep tensors small (a few hundred elements at most): the folder stays well under 1 MB.
"""
import glob
import importlib
import os
import shutil
import sys

import torch

from fixturelib import *  # Spec helpers (randn, pos, away, ...), Case, F, make_case
from fixturelib import FIXTURES, HERE, make_case

# ---- the cases: one list, the C++ registry in tests/test_ops_torch.cpp is its twin -------
CASES = [
    # elementwise, same shapes
    Case("add", [randn(2, 3), randn(2, 3)], lambda a, b: a + b),
    Case("sub", [randn(2, 3), randn(2, 3)], lambda a, b: a - b),
    Case("mul", [randn(2, 3), randn(2, 3)], lambda a, b: a * b),
    Case("div", [randn(2, 3), away(2, 3, margin=0.5)], lambda a, b: a / b),
    Case("pow", [pos(2, 3), randn(2, 3)], lambda a, b: torch.pow(a, b)),
    Case("pow_scalar_int", [randn(3, 4)], lambda a: torch.pow(a, 3.0)),
    Case("pow_scalar_frac", [pos(3, 4)], lambda a: torch.pow(a, 2.5)),
    Case("pow_scalar_neg", [pos(3, 4)], lambda a: torch.pow(a, -1.5)),
    Case("add_scalar", [randn(3, 4)], lambda a: a + 1.5),
    Case("mul_scalar", [randn(3, 4)], lambda a: a * -2.5),
    Case("scalar_operators", [randn(3, 4)], lambda a: 3.0 - a * 2.0 + a / 4.0 - 1.0 + 2.0 * a + (0.5 + a)),
    Case("neg", [randn(3, 4)], lambda a: -a),
    Case("exp", [randn(3, 4)], lambda a: torch.exp(a)),
    Case("log", [pos(3, 4)], lambda a: torch.log(a)),
    Case("sqrt", [pos(3, 4)], lambda a: torch.sqrt(a)),
    Case("abs", [away(3, 4)], lambda a: torch.abs(a)),
    Case("tanh", [randn(3, 4)], lambda a: torch.tanh(a)),
    Case("sigmoid", [randn(3, 4)], lambda a: torch.sigmoid(a)),
    Case("relu", [away(3, 4)], lambda a: torch.relu(a)),
    Case("silu", [randn(3, 4)], lambda a: F.silu(a)),
    Case("gelu", [randn(3, 4)], lambda a: F.gelu(a)),  # exact erf form (approximate='none')
    Case("softplus", [randn(3, 4)], lambda a: F.softplus(a)),
    # beta 2, threshold 1: the linear branch where 2x > 1, inputs kept away from that seam at x = 0.5
    Case("softplus_beta_threshold", [away(4, 5, kinks=(0.5,))], lambda a: F.softplus(a, beta=2.0, threshold=1.0)),
    # inputs in about [-45, 45]: the threshold branch (x > 20) and e^x far below float32's epsilon
    Case("softplus_wide", [randn(4, 5)], lambda a: F.softplus(a * 15.0)),
    Case("clamp", [away(4, 5, kinks=(-0.5, 0.5))], lambda a: torch.clamp(a, -0.5, 0.5)),
    Case("clamp_wide", [away(4, 5, kinks=(-1.0, 2.0))], lambda a: torch.clamp(a, -1.0, 2.0)),
    Case("where", [mask(2, 3), randn(2, 3), randn(2, 3)], lambda c, a, b: torch.where(c != 0, a, b)),
    Case("gt", [small_ints(3, 3, 4), small_ints(3, 3, 4)], lambda a, b: (a > b).to(torch.float64)),
    Case("lt", [small_ints(3, 3, 4), small_ints(3, 4)], lambda a, b: (a < b).to(torch.float64)),
    Case("eq", [small_ints(3, 3, 4), small_ints(3, 3, 1)], lambda a, b: (a == b).to(torch.float64)),
    Case("pow_scalar_zero", [randn(3, 4)], lambda a: torch.pow(a, 0.0)),
    Case("exp_transposed", [randn(3, 4)], lambda a: torch.exp(a.t())),
    Case("exp_expanded", [randn(3, 1)], lambda a: torch.exp(a.expand(3, 4))),
    Case("tanh_expanded_0d", [randn()], lambda a: torch.tanh(a.expand(2, 3))),
    Case("mul_expanded_sliced", [randn(1, 4), randn(3, 8)], lambda a, b: a.expand(3, 4) * b[:, 1::2]),
    Case("add_noncontig", [randn(3, 4), randn(4, 3)], lambda a, b: a.t() + b),
    Case("mul_nograd_b", [randn(2, 3), nograd(randn(2, 3))], lambda a, b: a * b),
    Case("div_nograd_a", [nograd(randn(2, 3)), away(2, 3, margin=0.5)], lambda a, b: a / b),
    Case("pow_nograd_b", [pos(2, 3), nograd(randn(2, 3))], lambda a, b: torch.pow(a, b)),

    # elementwise, broadcasting
    Case("add_bcast_234_31", [randn(2, 3, 4), randn(3, 1)], lambda a, b: a + b),
    Case("mul_bcast_4_214", [randn(4), randn(2, 1, 4)], lambda a, b: a * b),
    Case("sub_bcast_214_31", [randn(2, 1, 4), randn(3, 1)], lambda a, b: a - b),
    Case("div_bcast_23_3", [randn(2, 3), away(3, margin=0.5)], lambda a, b: a / b),
    Case("div_bcast_1_23", [randn(1), away(2, 3, margin=0.5)], lambda a, b: a / b),
    Case("pow_bcast_31_14", [pos(3, 1), randn(1, 4)], lambda a, b: torch.pow(a, b)),
    Case("mul_bcast_0d", [randn(2, 3), randn()], lambda a, b: a * b),
    Case("add_bcast_0d_left", [randn(), randn(2, 2, 3)], lambda a, b: a + b),
    Case("where_bcast", [mask(2, 1), randn(2, 3), randn(3)], lambda c, a, b: torch.where(c != 0, a, b)),
    Case("mul_bcast_nograd", [randn(2, 3, 4), nograd(randn(4))], lambda a, b: a * b),
    Case("add_bcast_both", [randn(2, 1, 4), randn(3, 1)], lambda a, b: a + b),

    # reductions
    Case("sum_all", [randn(3, 4)], lambda x: x.sum()),
    Case("sum_dim1", [randn(3, 4)], lambda x: x.sum(1)),
    Case("sum_dim1_keep", [randn(3, 4)], lambda x: x.sum(1, keepdim=True)),
    Case("sum_dims02", [randn(2, 3, 4)], lambda x: x.sum((0, 2))),
    Case("sum_dims02_keep", [randn(2, 3, 4)], lambda x: x.sum((0, 2), keepdim=True)),
    Case("sum_neg_dim", [randn(2, 3, 4)], lambda x: x.sum(-1)),
    Case("sum_all_keep", [randn(2, 3, 4)], lambda x: x.sum((0, 1, 2), keepdim=True)),
    Case("mean_all", [randn(3, 4)], lambda x: x.mean()),
    Case("mean_dim0", [randn(3, 4)], lambda x: x.mean(0)),
    Case("mean_dims12_keep", [randn(2, 3, 4)], lambda x: x.mean((1, 2), keepdim=True)),
    Case("var_all", [randn(3, 4)], lambda x: x.var(unbiased=True)),
    Case("var_all_c0", [randn(3, 4)], lambda x: x.var(unbiased=False)),
    Case("var_dim1", [randn(3, 5)], lambda x: x.var(1, unbiased=True)),
    Case("var_dim1_keep_c0", [randn(3, 5)], lambda x: x.var(1, unbiased=False, keepdim=True)),
    Case("var_dims02", [randn(2, 3, 4)], lambda x: x.var((0, 2), unbiased=True)),
    Case("var_dims02_keep_c0", [randn(2, 3, 4)], lambda x: x.var((0, 2), unbiased=False, keepdim=True)),
    Case("var_neg_dim", [randn(2, 3, 4)], lambda x: x.var(-1, unbiased=True)),
    Case("sum_permuted", [randn(2, 3, 4)], lambda x: x.permute(2, 0, 1).sum(1)),
    Case("sum_expanded", [randn(3, 1)], lambda x: x.expand(3, 4).sum(0)),
    Case("var_sliced", [randn(4, 6)], lambda x: x[::2, 1:].var(1)),
    Case("sum_0d", [randn()], lambda x: x.sum()),
    Case("sum_0d_dim0", [randn()], lambda x: x.sum(0)),
    Case("sum_empty", [randn(0, 3)], lambda x: x.sum(0)),
    Case("max_dim1", [distinct(3, 5)], lambda x: tuple(torch.max(x, 1))),
    Case("max_dim0_keep", [distinct(4, 3)], lambda x: tuple(torch.max(x, 0, keepdim=True))),
    Case("max_neg_dim", [distinct(2, 3, 4)], lambda x: tuple(torch.max(x, -2))),
    Case("max_all", [distinct(3, 4)], lambda x: torch.max(x)),
    Case("max_transposed", [distinct(3, 4)], lambda x: tuple(torch.max(x.t(), 1))),
    Case("argmax_dim1", [distinct(3, 5)], lambda x: torch.argmax(x, 1)),
    Case("argmax_dim0_keep", [distinct(4, 3)], lambda x: torch.argmax(x, 0, keepdim=True)),
    Case("argmax_3d", [distinct(2, 3, 4)], lambda x: torch.argmax(x, 2)),

    # matmul
    Case("matmul_2d", [randn(3, 4), randn(4, 5)], lambda a, b: a @ b),
    Case("matmul_batched", [randn(2, 3, 4), randn(2, 4, 5)], lambda a, b: a @ b),
    Case("matmul_bcast_4d_2d", [randn(2, 3, 4, 5), randn(5, 6)], lambda a, b: a @ b),
    Case("matmul_bcast_3d_1", [randn(3, 4, 5), randn(1, 5, 2)], lambda a, b: a @ b),
    Case("matmul_bcast_2d_3d", [randn(3, 4), randn(2, 4, 5)], lambda a, b: a @ b),
    Case("matmul_bcast_both", [randn(2, 1, 3, 4), randn(3, 4, 5)], lambda a, b: a @ b),
    Case("matmul_transposed_a", [randn(4, 3), randn(4, 5)], lambda a, b: a.transpose(0, 1) @ b),
    Case("matmul_transposed_b", [randn(2, 3, 4), randn(2, 5, 4)], lambda a, b: a @ b.transpose(-1, -2)),
    Case("matmul_permuted_batch", [randn(3, 2, 4), randn(4, 5)], lambda a, b: a.permute(1, 0, 2) @ b),
    Case("matmul_permuted_4d", [randn(2, 3, 4, 5), randn(5, 2)], lambda a, b: a.permute(0, 2, 1, 3) @ b),
    Case("matmul_outer", [randn(3, 1), randn(1, 4)], lambda a, b: a @ b),
    Case("matmul_dot", [randn(1, 6), randn(6, 1)], lambda a, b: a @ b),
    Case("matmul_sliced", [randn(3, 8), randn(4, 5)], lambda a, b: a[:, ::2] @ b),
    Case("matmul_nograd_b", [randn(3, 4), nograd(randn(4, 2))], lambda a, b: a @ b),
    Case("matmul_nograd_a", [nograd(randn(2, 3, 4)), randn(4, 2)], lambda a, b: a @ b),
    Case("matmul_expanded_a", [randn(1, 3, 4), randn(2, 4, 5)], lambda a, b: a.expand(2, 3, 4) @ b),
    # an operand whose rows or columns are a broadcast (stride-0) view
    Case("matmul_expanded_rows", [randn(1, 4), randn(4, 5)], lambda a, b: a.expand(3, 4) @ b),
    Case("matmul_expanded_cols", [randn(3, 1), randn(4, 5)], lambda a, b: a.expand(3, 4) @ b),
    Case("matmul_expanded_b", [randn(3, 4), randn(1, 5)], lambda a, b: a @ b.expand(4, 5)),
    Case("matmul_expanded_0d", [randn(), randn(4, 5)], lambda a, b: a.expand(1, 4) @ b),

    # views
    Case("view", [randn(2, 3, 4)], lambda x: x.view(6, 4)),
    Case("view_infer", [randn(2, 3, 4)], lambda x: x.view(-1, 2)),
    Case("view_of_narrow", [randn(4, 6)], lambda x: x.narrow(0, 1, 2).view(12)),
    Case("reshape", [randn(2, 3, 4)], lambda x: x.reshape(4, 6)),
    Case("reshape_noncontig", [randn(2, 3, 4)], lambda x: x.permute(2, 0, 1).reshape(4, 6)),
    Case("permute", [randn(2, 3, 4)], lambda x: x.permute(2, 0, 1)),
    Case("permute_neg", [randn(2, 3, 4)], lambda x: x.permute(-1, 0, -2)),
    Case("transpose", [randn(2, 3, 4)], lambda x: x.transpose(0, 2)),
    Case("transpose_neg", [randn(2, 3, 4)], lambda x: x.transpose(-1, -2)),
    Case("narrow", [randn(4, 5)], lambda x: x.narrow(1, 1, 3)),
    Case("slice_step", [randn(4, 7)], lambda x: x[:, 1:6:2]),
    Case("slice_neg_start", [randn(7, 3)], lambda x: x[-5::2]),
    Case("slice_end_clamped", [randn(3, 5)], lambda x: x[:, 2:100]),
    Case("expand", [randn(3, 1)], lambda x: x.expand(2, 3, 4)),
    Case("expand_neg1", [randn(1, 4)], lambda x: x.expand(3, -1)),
    Case("squeeze", [randn(2, 1, 3)], lambda x: x.squeeze(1)),
    Case("squeeze_neg", [randn(2, 3, 1)], lambda x: x.squeeze(-1)),
    Case("squeeze_noop", [randn(2, 3)], lambda x: x.squeeze(0)),
    Case("unsqueeze", [randn(2, 3)], lambda x: x.unsqueeze(1)),
    Case("unsqueeze_neg", [randn(2, 3)], lambda x: x.unsqueeze(-1)),
    Case("contiguous_permuted", [randn(2, 3, 4)], lambda x: x.permute(1, 2, 0).contiguous()),
    Case("view_after_contiguous", [randn(2, 3, 4)], lambda x: x.transpose(0, 1).contiguous().view(3, 8)),
    Case("clone", [randn(2, 3)], lambda x: x.clone()),
    Case("expand_0d", [randn()], lambda x: x.expand(2, 3)),
    Case("unsqueeze_0d", [randn()], lambda x: x.unsqueeze(0)),
    Case("slice_of_expand", [randn(3, 1)], lambda x: x.expand(3, 4)[:, 1:3]),
    Case("narrow_of_permuted", [randn(2, 3, 4)], lambda x: x.permute(1, 0, 2).narrow(0, 1, 2)),
    Case("view_of_expand", [randn(3, 1)], lambda x: x.expand(3, 4).view(3, 2, 2)),
    Case("view_split_noncontig", [randn(2, 3, 4)], lambda x: x.transpose(0, 1).view(3, 2, 2, 2)),
    Case("view_merge_permuted", [randn(2, 3, 4)], lambda x: x.permute(2, 0, 1).view(4, 6)),
    Case("view_unit_dims", [randn(2, 3)], lambda x: x.unsqueeze(1).transpose(0, 1).view(2, 3)),
    Case("views_into_mul", [randn(2, 3, 4), randn(4, 3)],
         lambda x, y: x.transpose(1, 2) * y.unsqueeze(0)[:, :, 0:3:1]),

    # join and split
    Case("cat_dim0", [randn(2, 3), randn(1, 3), randn(3, 3)], lambda a, b, c: torch.cat([a, b, c], 0)),
    Case("cat_dim1", [randn(2, 2), randn(2, 4)], lambda a, b: torch.cat([a, b], 1)),
    Case("cat_neg_dim", [randn(2, 3, 1), randn(2, 3, 2)], lambda a, b: torch.cat([a, b], -1)),
    Case("cat_views", [randn(3, 2), randn(4, 3)], lambda a, b: torch.cat([a.transpose(0, 1), b[::2]], 0)),
    Case("stack_dim0", [randn(2, 3), randn(2, 3), randn(2, 3)], lambda a, b, c: torch.stack([a, b, c], 0)),
    Case("stack_dim1", [randn(2, 3), randn(2, 3)], lambda a, b: torch.stack([a, b], 1)),
    Case("stack_neg", [randn(2, 3), randn(2, 3)], lambda a, b: torch.stack([a, b], -1)),
    Case("split_dim0", [randn(5, 3)], lambda x: split_cat(x, 2, 0, [1.0, -2.0, 0.5])),
    Case("split_dim1", [randn(2, 7)], lambda x: split_cat(x, 3, 1, [1.5, -1.0, 3.0])),
    Case("chunk_dim0", [randn(7, 2)], lambda x: chunk_cat(x, 3, 0, [2.0, -0.5, 1.0])),
    Case("chunk_fewer", [randn(2, 6)], lambda x: chunk_cat(x, 4, 1, [-1.0, 0.25, 2.0])),
    Case("split_bigger", [randn(2, 3)], lambda x: split_cat(x, 5, 1, [2.0])),
    Case("cat_expanded", [randn(1, 3), randn(2, 3)], lambda a, b: torch.cat([a.expand(2, 3), b], 0)),
    Case("stack_0d", [randn(), randn()], lambda a, b: torch.stack([a, b], 0)),
    Case("cat_int64", [index(9, 2, 3), index(9, 1, 3)], lambda a, b: torch.cat([a, b], 0)),
    Case("cat_empty_piece", [randn(2, 3), randn(0, 3)], lambda a, b: torch.cat([a, b], 0)),

    # indexing
    Case("index_select_dim0", [randn(4, 3), index_values([2, 0, 2, 3, 2])],
         lambda x, i: torch.index_select(x, 0, i)),
    Case("index_select_dim1", [randn(2, 5), index_values([4, 4, 1])], lambda x, i: torch.index_select(x, 1, i)),
    Case("index_select_3d", [randn(2, 4, 3), index_values([3, 0, 3, 1])], lambda x, i: torch.index_select(x, 1, i)),
    Case("gather_dim1", [randn(3, 4), index(4, 3, 5)], lambda x, i: torch.gather(x, 1, i)),
    Case("gather_dim0", [randn(4, 3), index(4, 6, 3)], lambda x, i: torch.gather(x, 0, i)),
    Case("gather_smaller", [randn(3, 5), index(5, 2, 3)], lambda x, i: torch.gather(x, 1, i)),
    Case("gather_3d_neg", [randn(2, 3, 4), index(4, 2, 3, 6)], lambda x, i: torch.gather(x, -1, i)),
    Case("index_select_noncontig", [randn(3, 4), index_values([1, 3, 1])],
         lambda x, i: torch.index_select(x.t(), 0, i)),
    Case("gather_noncontig", [randn(4, 3), index(4, 3, 5)], lambda x, i: torch.gather(x.t(), 1, i)),

    # composites
    Case("mlp", [randn(4, 3), randn(3, 5), randn(5), randn(5, 2), randn(2)],
         lambda x, w1, b1, w2, b2: (F.silu(x @ w1 + b1) @ w2 + b2).sum()),
    Case("reuse", [randn(3, 4)], lambda x: x * x + x - torch.exp(x) * x),
    Case("softmax", [randn(3, 5)], lambda x: softmax_manual(x, 1)),
    Case("layernorm", [randn(3, 6), randn(6), randn(6)],
         lambda x, g, b: (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
         * g + b),
    Case("mse", [randn(4, 3), randn(4, 3)], lambda a, b: torch.pow(a - b, 2.0).mean()),
    Case("attention", [randn(2, 3, 4), randn(2, 3, 4), randn(2, 3, 4)],
         lambda q, k, v: softmax_manual(q @ k.transpose(-1, -2) / 2.0, -1) @ v),
    Case("cross_entropy", [randn(4, 5), index(5, 4, 1)],
         lambda x, t: -torch.gather(torch.log(softmax_manual(x, 1)), 1, t).mean()),
    Case("gelu_tanh_mix", [randn(2, 5), away(2, 5, margin=0.5)],
         lambda a, b: F.gelu(a) * torch.tanh(b) + torch.sigmoid(a / b)),
]




def all_cases():
    """CASES above plus the CASES of every tests/cases_*.py (layers, losses, optimizers)."""
    cases = list(CASES)
    sys.path.insert(0, HERE)
    for path in sorted(glob.glob(os.path.join(HERE, "cases_*.py"))):
        module = importlib.import_module(os.path.splitext(os.path.basename(path))[0])
        cases += module.CASES
    return cases


def main():
    torch.set_grad_enabled(True)
    cases = all_cases()
    names = [c.name for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SystemExit(f"duplicate case names: {sorted(dupes)}")
    if os.path.isdir(FIXTURES):
        shutil.rmtree(FIXTURES)
    os.makedirs(FIXTURES)
    for case in cases:
        make_case(case)
    with open(os.path.join(FIXTURES, "MANIFEST.txt"), "w") as f:
        f.write("".join(n + "\n" for n in names))
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(FIXTURES) for f in fs)
    print(f"wrote {len(cases)} cases to {os.path.relpath(FIXTURES)} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
