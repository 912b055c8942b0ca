#!/usr/bin/python3
"""tests/make_fixtures_vae.py: PyTorch reference numbers for tests/test_vae.cpp.

Regenerate (Debian's PyTorch, so /usr/bin/python3):

    /usr/bin/python3 tests/make_fixtures_vae.py

It rewrites tests/fixtures_vae/ from scratch:

  <case>/weights.safetensors     the state_dict of the VAE below (the twin of
                                 diffusion/vae.h, CompVis' AutoencoderKL names) for the
                                 case's config, every tensor random (conv2, zero at init
                                 in ours, included: a zero weight hides its input's
                                 gradient); the config and the parameter count in the
                                 metadata (what the C++ test builds its VAE from)
  <case>/reference.safetensors   x (B, C, H, W), eps (B, z, h, w), and
                                 mu, logvar = encode(x); z = mu + exp(logvar / 2) eps;
                                 x_hat = decode(z); the loss of vae_loss with BETA and
                                 "l1" (loss.total, loss.recon, loss.kl) and with "l2"
                                 (loss_l2.recon); for loss.total: grad.x and
                                 grad.<name> for every parameter <name>

How the numbers are made (as in tests/make_fixtures_unet.py): weights and inputs are drawn
in float32; the reference runs in float64 on exactly those values, and its results are
rounded to float32 only when saved. One thread, fixed seeds: reruns are byte-identical.

The twin is written out here rather than imported from CompVis' code (not installable
here); it follows ldm/modules/diffusionmodules/model.py (Encoder, Decoder, ResnetBlock
without temb) and ldm/models/autoencoder.py (AutoencoderKL, DiagonalGaussianDistribution)
with the differences diffusion/vae.h lists: our attention (to_q/k/v/out, one head),
GroupNorm eps 1e-5, padding 1 in the downsample conv.
"""
import math
import os
import shutil
import sys
import zlib
from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures_vae")
sys.path.insert(0, HERE)

from make_fixtures_nnio import read_safetensors, write_safetensors  # noqa: E402

BETA = 0.5  # large, so the KL's gradient (through mu and logvar) is visible beside the recon's


@dataclass
class VAEConfig:  # the fields of td::diffusion::VAEConfig
    in_channels: int = 1
    image_size: int = 28
    ch: int = 32
    mults: Tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    z_channels: int = 4
    groups: int = 8
    mid_attn: bool = True


class ResnetBlock(nn.Module):  # LDM's, with temb_channels = 0 and dropout 0
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-5)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if self.nin_shortcut is not None else x) + h


class Attention(nn.Module):  # nn::Attention, self-attention, one head
    def __init__(self, dim):
        super().__init__()
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x):  # (B, L, C) -> (B, L, C)
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(x.shape[-1]), dim=-1)
        return self.to_out(p @ v)


class AttnBlock(nn.Module):
    def __init__(self, channels, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-5)
        self.attn = Attention(channels)

    def forward(self, x):
        B, C, H, W = x.shape
        seq = self.norm(x).reshape(B, C, H * W).transpose(1, 2)  # (B, HW, C)
        return x + self.attn(seq).transpose(1, 2).reshape(B, C, H, W)


class Resample(nn.Module):  # gives the conv its name: down.{i}.downsample.conv
    def __init__(self, channels, stride):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=stride, padding=1)


def mid_module(width, c):
    mid = nn.Module()
    mid.block_1 = ResnetBlock(width, width, c.groups)
    if c.mid_attn:
        mid.attn_1 = AttnBlock(width, c.groups)
    mid.block_2 = ResnetBlock(width, width, c.groups)
    return mid


def run_mid(mid, h):
    h = mid.block_1(h)
    if hasattr(mid, "attn_1"):
        h = mid.attn_1(h)
    return mid.block_2(h)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_in = nn.Conv2d(c.in_channels, c.ch, 3, padding=1)
        width = c.ch
        self.down = nn.ModuleList()
        for i, mult in enumerate(c.mults):
            level = nn.Module()
            level.block = nn.ModuleList()
            for _ in range(c.num_res_blocks):
                level.block.append(ResnetBlock(width, c.ch * mult, c.groups))
                width = c.ch * mult
            if i + 1 < len(c.mults):
                level.downsample = Resample(width, stride=2)
            self.down.append(level)
        self.mid = mid_module(width, c)
        self.norm_out = nn.GroupNorm(c.groups, width, eps=1e-5)
        self.conv_out = nn.Conv2d(width, 2 * c.z_channels, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.down:
            for blk in level.block:
                h = blk(h)
            if hasattr(level, "downsample"):
                h = level.downsample.conv(h)
        h = run_mid(self.mid, h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        width = c.ch * c.mults[-1]
        self.conv_in = nn.Conv2d(c.z_channels, width, 3, padding=1)
        self.mid = mid_module(width, c)
        up = []
        for i in reversed(range(len(c.mults))):
            level = nn.Module()
            level.block = nn.ModuleList()
            for _ in range(c.num_res_blocks + 1):
                level.block.append(ResnetBlock(width, c.ch * c.mults[i], c.groups))
                width = c.ch * c.mults[i]
            if i > 0:
                level.upsample = Resample(width, stride=1)
            up.insert(0, level)
        self.up = nn.ModuleList(up)
        self.norm_out = nn.GroupNorm(c.groups, width, eps=1e-5)
        self.conv_out = nn.Conv2d(width, c.in_channels, 3, padding=1)

    def forward(self, z):
        h = run_mid(self.mid, self.conv_in(z))
        for level in reversed(self.up):
            for blk in level.block:
                h = blk(h)
            if hasattr(level, "upsample"):
                h = level.upsample.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class VAE(nn.Module):  # AutoencoderKL with embed_dim = z_channels
    def __init__(self, c):
        super().__init__()
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)
        self.quant_conv = nn.Conv2d(2 * c.z_channels, 2 * c.z_channels, 1)
        self.post_quant_conv = nn.Conv2d(c.z_channels, c.z_channels, 1)

    def encode(self, x):  # DiagonalGaussianDistribution: chunk, clamp logvar to [-30, 20]
        mu, logvar = torch.chunk(self.quant_conv(self.encoder(x)), 2, dim=1)
        return mu, torch.clamp(logvar, -30.0, 20.0)

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


def vae_loss(x, x_hat, mu, logvar, beta, recon):
    B = x.shape[0]
    d = x - x_hat
    r = (d.abs() if recon == "l1" else d * d).sum() / B
    kl = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar) / B
    return r + beta * kl, r, kl


# Small: every parameter's gradient is compared and the folder is committed. "tiny": two
# levels (f = 2), a nin_shortcut on the way down (4 -> 8) and up (8 -> 4), GroupNorm with
# groups of 2 channels, mid attention. "three": three levels (f = 4), 2 blocks per level
# in the encoder (3 in the decoder), 2 image channels, one group, no mid attention.
CASES = {
    "tiny": VAEConfig(in_channels=1, image_size=8, ch=4, mults=(1, 2), num_res_blocks=1, z_channels=2, groups=2,
                      mid_attn=True),
    "three": VAEConfig(in_channels=2, image_size=8, ch=4, mults=(1, 1, 2), num_res_blocks=2, z_channels=3, groups=1,
                       mid_attn=False),
}


def random_state(model):
    """Every tensor random, at a scale that keeps activations O(1): weights N(0, 1/fan_in),
    biases N(0, 0.5^2), GroupNorm gammas 1 + N(0, 0.5^2)."""
    state = {}
    for name, p in model.state_dict().items():
        if name.endswith(".weight") and p.dim() >= 2:
            v = torch.randn(p.shape) / p[0].numel() ** 0.5
        elif name.endswith(".weight"):
            v = 1.0 + 0.5 * torch.randn(p.shape)
        else:
            v = 0.5 * torch.randn(p.shape)
        state[name] = v.float()
    return state


def config_metadata(c, count):
    return {"format": "pt", "in_channels": str(c.in_channels), "image_size": str(c.image_size), "ch": str(c.ch),
            "mults": ",".join(str(m) for m in c.mults), "num_res_blocks": str(c.num_res_blocks),
            "z_channels": str(c.z_channels), "groups": str(c.groups), "mid_attn": "1" if c.mid_attn else "0",
            "num_parameters": str(count), "beta": str(BETA)}


def make_case(name, c):
    d = os.path.join(OUT, name)
    os.makedirs(d)
    torch.manual_seed(zlib.crc32(name.encode()))
    model = VAE(c)
    state = random_state(model)
    count = sum(p.numel() for p in model.parameters())
    write_safetensors(os.path.join(d, "weights.safetensors"), state, config_metadata(c, count))

    f = 2 ** (len(c.mults) - 1)
    B, h = 2, c.image_size // f
    x = torch.randn(B, c.in_channels, c.image_size, c.image_size)
    eps = torch.randn(B, c.z_channels, h, h)

    # The reference in float64 on the float32 values.
    model.load_state_dict({k: v.double() for k, v in state.items()})
    model.double()
    xd = x.double().requires_grad_()
    mu, logvar = model.encode(xd)
    z = mu + torch.exp(0.5 * logvar) * eps.double()  # Kingma & Welling eq. 10
    x_hat = model.decode(z)
    total, recon, kl = vae_loss(xd, x_hat, mu, logvar, BETA, "l1")
    _, recon_l2, _ = vae_loss(xd, x_hat, mu, logvar, BETA, "l2")
    total.backward()

    ref = {"x": x, "eps": eps, "mu": mu.detach().float(), "logvar": logvar.detach().float(),
           "x_hat": x_hat.detach().float(), "loss.total": total.detach().float(), "loss.recon": recon.detach().float(),
           "loss.kl": kl.detach().float(), "loss_l2.recon": recon_l2.detach().float(), "grad.x": xd.grad.float()}
    for pname, p in model.named_parameters():
        ref["grad." + pname] = p.grad.float()
    write_safetensors(os.path.join(d, "reference.safetensors"), ref, {"format": "pt"})

    _, back = read_safetensors(os.path.join(d, "reference.safetensors"))  # self-check with the independent reader
    assert back.keys() == ref.keys()
    print(f"{name}: {count} parameters, |x_hat| max {x_hat.abs().max().item():.3f}, loss {total.item():.3f} "
          f"(recon {recon.item():.3f}, kl {kl.item():.3f}), |grad.x| max {xd.grad.abs().max().item():.3f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    for name, c in CASES.items():
        make_case(name, c)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total / 1024:.1f} KB)")
