"""tests/cases_nn.py: PyTorch fixture cases for the layer ops of tensor/nn_ops.h
(normalisation, softmax, losses, attention, embedding) and nn/ helpers.
Run by tests/make_fixtures.py; the C++ twins are in tests/test_nn_torch.cpp."""
import math

import torch

from fixturelib import Case, F, Spec, index, nograd, randn


def const(values):
    """A fixed float input, not differentiated (timesteps)."""
    return Spec(lambda: torch.tensor(values, dtype=torch.float64), False)


def small(*shape, scale=0.5):
    """N(0, scale^2): attention weights of a moderate size, so the softmax is not saturated
    and the C++ gradcheck's central differences (step 0.01) stay accurate."""
    return Spec(lambda: scale * torch.randn(shape, dtype=torch.float64), True)


def attend(x, c, wq, wk, wv, wo, bo, heads):
    """The latent-diffusion CrossAttention forward, written out."""
    def split(t):
        B, L, D = t.shape
        return t.reshape(B, L, heads, D // heads).permute(0, 2, 1, 3)
    q, k, v = split(x @ wq.T), split(c @ wk.T), split(c @ wv.T)
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    o = (w @ v).permute(0, 2, 1, 3)
    o = o.reshape(o.shape[0], o.shape[1], -1)
    return o @ wo.T + bo


def ddpm_timestep_embedding(t, dim):
    """get_timestep_embedding of the DDPM reference code (diffusion_utils.py)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / (half - 1))
    args = t[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


CASES = [
    # normalisation
    Case("group_norm_2groups", [randn(2, 4, 3, 3), randn(4), randn(4)],
         lambda x, g, b: F.group_norm(x, 2, g, b, eps=1e-5)),
    Case("group_norm_1group", [randn(2, 3, 4, 2), randn(3), randn(3)],
         lambda x, g, b: F.group_norm(x, 1, g, b, eps=1e-5)),
    Case("group_norm_instance", [randn(1, 4, 5), randn(4), randn(4)],
         lambda x, g, b: F.group_norm(x, 4, g, b, eps=1e-5)),
    Case("group_norm_const_affine", [randn(2, 4, 3, 3), nograd(randn(4)), nograd(randn(4))],
         lambda x, g, b: F.group_norm(x, 2, g, b, eps=1e-5)),
    # group_norm_silu: SiLU(GroupNorm(x)) as one op (the ResBlock's pair)
    Case("group_norm_silu", [randn(2, 6, 3, 4), randn(6), randn(6)],
         lambda x, g, b: F.silu(F.group_norm(x, 3, g, b, eps=1e-5))),
    # ... on awkward shapes: 1x1 positions and 20 channels; batch 1 and one group at 7x7;
    # one group per channel (the statistics of 9 elements)
    Case("group_norm_silu_1x1", [randn(3, 20, 1, 1), randn(20), randn(20)],
         lambda x, g, b: F.silu(F.group_norm(x, 5, g, b, eps=1e-5))),
    Case("group_norm_silu_1group", [randn(1, 10, 7, 7), randn(10), randn(10)],
         lambda x, g, b: F.silu(F.group_norm(x, 1, g, b, eps=1e-5))),
    Case("group_norm_silu_per_channel", [randn(2, 5, 3, 3), randn(5), randn(5)],
         lambda x, g, b: F.silu(F.group_norm(x, 5, g, b, eps=1e-5))),
    Case("layer_norm_last", [randn(2, 3, 5), randn(5), randn(5)],
         lambda x, g, b: F.layer_norm(x, (5,), g, b, eps=1e-5)),
    Case("layer_norm_two_dims", [randn(2, 3, 4), randn(3, 4), randn(3, 4)],
         lambda x, g, b: F.layer_norm(x, (3, 4), g, b, eps=1e-5)),
    Case("layer_norm_no_affine", [randn(4, 6)], lambda x: F.layer_norm(x, (6,), eps=1e-5)),
    # softmax
    Case("softmax_last", [randn(3, 5)], lambda x: torch.softmax(x, -1)),
    Case("softmax_dim1", [randn(2, 4, 3)], lambda x: torch.softmax(x, 1)),
    Case("log_softmax_last", [randn(3, 5)], lambda x: torch.log_softmax(x, -1)),
    Case("log_softmax_dim0", [randn(4, 3)], lambda x: torch.log_softmax(x * 3, 0)),
    # losses
    Case("cross_entropy_op", [randn(5, 4), index(4, 5)], lambda x, t: F.cross_entropy(x, t)),
    Case("mse_loss_op", [randn(3, 4), randn(3, 4)], lambda a, b: F.mse_loss(a, b)),
    # attention
    Case("sdpa", [randn(2, 2, 3, 4), randn(2, 2, 5, 4), randn(2, 2, 5, 3)],
         lambda q, k, v: torch.softmax(q @ k.transpose(-1, -2) / 2.0, -1) @ v),
    Case("cross_attention", [randn(2, 4, 6), randn(2, 3, 5), small(8, 6), small(8, 5), small(8, 5), small(6, 8),
                             randn(6)],
         lambda x, c, wq, wk, wv, wo, bo: attend(x, c, wq, wk, wv, wo, bo, heads=2)),
    Case("self_attention", [randn(2, 5, 6), small(6, 6), small(6, 6), small(6, 6), small(6, 6), randn(6)],
         lambda x, wq, wk, wv, wo, bo: attend(x, x, wq, wk, wv, wo, bo, heads=3)),
    # embedding, linear
    Case("embedding_op", [randn(6, 3), index(6, 2, 4)], lambda w, i: F.embedding(i, w)),
    Case("linear", [randn(2, 3, 4), randn(5, 4), randn(5)], lambda x, w, b: F.linear(x, w, b)),
    Case("timestep_embedding", [const([0.0, 1.0, 10.0, 250.0, 999.0])],
         lambda t: ddpm_timestep_embedding(t, 8)),
]
