"""bench/unet_torch.py: the UNet of diffusion/unet.h, in plain PyTorch.

The same network, layer for layer, with the same state_dict names and shapes, so a
.safetensors file moves between the two and both give the same eps_theta(x_t, t).
It is the reference of tests/make_fixtures_unet.py (gradients included) and the torch
side of the UNet benchmark (bench/unet_torch_bench.py). Keep it in step with
diffusion/unet.cpp: a change there that this file does not repeat shows up as a failing
tests/test_unet.cpp once the fixtures are regenerated.

    from unet_torch import UNet, UNetConfig
    model = UNet(UNetConfig(ch=32, mults=(1, 2, 2), attn_res=(7,)))
    eps = model(x_t, t)                    # x_t (B, C, H, W) float, t (B) int64 -> (B, C, H, W)

Layout (DDPM, Ho et al. 2020, appendix B; names of the PyTorch port of the DDPM code):
    temb.dense.0/1        Linear ch -> 4 ch, SiLU, Linear 4 ch -> 4 ch, on the sinusoids of t
    conv_in               3x3, C -> ch
    down.{i}.block.{j}    ResBlocks of ch * mults[i] channels (+ down.{i}.attn.{j} where the
                          resolution is in attn_res); down.{i}.downsample.conv: 3x3 stride 2
    mid.block_1, mid.attn_1, mid.block_2
    up.{i}.block.{j}      num_res_blocks + 1 ResBlocks on cat(h, skip); up.{i}.upsample.conv
                          after a nearest x2 (up.0 is the full-resolution level)
    norm_out, conv_out    GroupNorm, SiLU, 3x3 back to C channels
"""
import math
from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class UNetConfig:  # the fields of td::diffusion::UNetConfig (no conditioning here)
    in_channels: int = 1
    out_channels: int = 0  # 0: same as in_channels
    image_size: int = 28
    ch: int = 32
    mults: Tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 2
    attn_res: Tuple[int, ...] = (7,)
    heads: int = 1
    dropout: float = 0.1
    groups: int = 8


def timestep_embedding(t, dim, max_period=10000.0):
    """The DDPM form (nn/timestep_embedding.h): freq_i = exp(-ln(max_period) i / (half - 1)),
    [sin(t freq), cos(t freq)]. t (B) -> (B, dim) float64 (ours computes in double too)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / (half - 1))
    args = t.to(torch.float64)[:, None] * freqs[None, :]                 # (B, half)
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)            # (B, 2 half)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb_dim, groups, dropout):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(temb_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-5)
        self.dropout = dropout
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        # As ours: every block starts as the identity.
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):  # x (B, cin, H, W), temb (B, temb_dim) -> (B, cout, H, W)
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = F.silu(self.norm2(h))
        h = F.dropout(h, self.dropout, self.training)
        h = self.conv2(h)
        return (self.nin_shortcut(x) if self.nin_shortcut is not None else x) + h


class Attention(nn.Module):
    """nn::Attention, self-attention only: to_q, to_k, to_v without bias, to_out with;
    head k gets channels [k d, (k + 1) d)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x):  # (B, L, C) -> (B, L, C)
        B, L, C = x.shape
        d = C // self.heads

        def split(y):  # (B, L, C) -> (B, heads, L, d)
            return y.reshape(B, L, self.heads, d).transpose(1, 2)

        q, k, v = split(self.to_q(x)), split(self.to_k(x)), split(self.to_v(x))
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)  # (B, heads, L, L)
        o = (p @ v).transpose(1, 2).reshape(B, L, C)
        return self.to_out(o)


class AttnBlock(nn.Module):
    def __init__(self, channels, heads, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-5)
        self.attn = Attention(channels, heads)

    def forward(self, x):  # (B, C, H, W) -> same; one token per pixel
        B, C, H, W = x.shape
        seq = self.norm(x).reshape(B, C, H * W).transpose(1, 2)  # (B, HW, C)
        return x + self.attn(seq).transpose(1, 2).reshape(B, C, H, W)


class Level(nn.Module):  # one resolution: down.{i} or up.{i}
    def __init__(self):
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()  # empty where the resolution has no attention


class Resample(nn.Module):  # gives the conv its name: down.{i}.downsample.conv
    def __init__(self, channels, stride):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=stride, padding=1)


class UNet(nn.Module):
    def __init__(self, c: UNetConfig):
        super().__init__()
        self.config = c
        out_channels = c.out_channels or c.in_channels
        temb_dim = 4 * c.ch
        self.temb = nn.Module()
        self.temb.dense = nn.ModuleList([nn.Linear(c.ch, temb_dim), nn.Linear(temb_dim, temb_dim)])
        self.conv_in = nn.Conv2d(c.in_channels, c.ch, 3, padding=1)

        def block(cin, cout):
            return ResBlock(cin, cout, temb_dim, c.groups, c.dropout)

        # Down path; skip_widths: the width of every tensor kept for a skip connection.
        skip_widths, width, res = [c.ch], c.ch, c.image_size
        self.down = nn.ModuleList()
        for i, mult in enumerate(c.mults):
            level = Level()
            for _ in range(c.num_res_blocks):
                level.block.append(block(width, c.ch * mult))
                width = c.ch * mult
                if res in c.attn_res:
                    level.attn.append(AttnBlock(width, c.heads, c.groups))
                skip_widths.append(width)
            if i + 1 < len(c.mults):
                level.downsample = Resample(width, stride=2)
                skip_widths.append(width)
                res //= 2
            self.down.append(level)

        self.mid = nn.Module()
        self.mid.block_1 = block(width, width)
        self.mid.attn_1 = AttnBlock(width, c.heads, c.groups)
        self.mid.block_2 = block(width, width)

        # Up path, built from the lowest resolution up, stored so that up[i] is level i.
        up = []
        for i in reversed(range(len(c.mults))):
            level = Level()
            for _ in range(c.num_res_blocks + 1):
                level.block.append(block(width + skip_widths.pop(), c.ch * c.mults[i]))
                width = c.ch * c.mults[i]
                if res in c.attn_res:
                    level.attn.append(AttnBlock(width, c.heads, c.groups))
            if i > 0:
                level.upsample = Resample(width, stride=1)
                res *= 2
            up.insert(0, level)
        self.up = nn.ModuleList(up)

        self.norm_out = nn.GroupNorm(c.groups, width, eps=1e-5)
        self.conv_out = nn.Conv2d(width, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # as ours: the first prediction is 0
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, t):  # x (B, C, H, W), t (B) int64 -> (B, out_channels, H, W)
        temb = timestep_embedding(t, self.config.ch).to(x.dtype)               # (B, ch)
        temb = self.temb.dense[1](F.silu(self.temb.dense[0](temb)))            # (B, 4 ch)

        hs = [self.conv_in(x)]  # the skips, in order
        for level in self.down:
            for j, blk in enumerate(level.block):
                h = blk(hs[-1], temb)
                if len(level.attn):
                    h = level.attn[j](h)
                hs.append(h)
            if hasattr(level, "downsample"):
                hs.append(level.downsample.conv(hs[-1]))

        h = self.mid.block_1(hs[-1], temb)
        h = self.mid.attn_1(h)
        h = self.mid.block_2(h, temb)

        for level in reversed(self.up):
            for j, blk in enumerate(level.block):
                h = blk(torch.cat([h, hs.pop()], dim=1), temb)
                if len(level.attn):
                    h = level.attn[j](h)
            if hasattr(level, "upsample"):
                h = level.upsample.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def num_parameters(model):
    return sum(p.numel() for p in model.parameters())
