#!/usr/bin/python3
"""tests/make_fixtures_unet.py: PyTorch reference numbers for tests/test_unet.cpp.

Regenerate (Debian's PyTorch, so /usr/bin/python3):

    /usr/bin/python3 tests/make_fixtures_unet.py

It rewrites tests/fixtures_unet/ from scratch:

  <case>/weights.safetensors     the state_dict of bench/unet_torch.py's UNet for the
                                 case's config, every tensor random (conv2 and conv_out,
                                 zero at init, included: a zero weight hides its input's
                                 gradient); the config and the parameter count in the
                                 metadata (what the C++ test builds its UNet from)
  <case>/reference.safetensors   x (B, C, H, W), t (B) int64, r (like y), y = model(x, t),
                                 and for loss = sum(y * r): grad.x and grad.<name> for every
                                 parameter <name>
  mnist_default.txt              the parameter names and shapes of the demo config
                                 (ch 32, mults 1,2,2, 2 res blocks, attention at 7), and
                                 their count: the C++ UNet must have exactly these

How the numbers are made (as in tests/make_fixtures.py): weights and inputs are drawn in
float32; the reference runs in float64 on exactly those values, and its results are
rounded to float32 only when saved. One thread, fixed seeds: reruns are byte-identical.
"""
import os
import shutil
import sys
import zlib

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures_unet")
sys.path.insert(0, os.path.join(HERE, "..", "bench"))

from make_fixtures_nnio import read_safetensors, write_safetensors  # noqa: E402
from unet_torch import UNet, UNetConfig, num_parameters  # noqa: E402

# Small: the names and gradients of every parameter add up fast, and the folder is
# committed (about 200 KB). Together the two cover GroupNorm with groups of 2 channels
# and with one group, attention with 2 heads (at two resolutions and in the middle), the
# nin_shortcuts of the up path (cat(h, skip) is wider than the block), several blocks per
# level (the skip stack), three levels and 2 image channels. Widths that change on the
# way down (the demo's 32, 64, 64) cost too many bytes here; their names and shapes are
# checked through mnist_default.txt, and their blocks are the up path's code.
# (ch is at least 4: the time embedding has ch dimensions and needs half - 1 > 0.)
CASES = {
    "tiny": UNetConfig(in_channels=1, image_size=8, ch=4, mults=(1, 1), num_res_blocks=1, attn_res=(4,), heads=2,
                       dropout=0.0, groups=2),
    "deep": UNetConfig(in_channels=2, image_size=8, ch=4, mults=(1, 1, 1), num_res_blocks=2, attn_res=(8, 2),
                       heads=2, dropout=0.0, groups=1),
}
T_STEPS = [3, 917]  # one early and one late step: small and large sinusoid arguments


def seed(name):
    torch.manual_seed(zlib.crc32(name.encode()))


def random_state(model):
    """Every tensor random, at a scale that keeps activations O(1): weights N(0, 1/fan_in),
    biases N(0, 0.5^2), GroupNorm gammas 1 + N(0, 0.5^2)."""
    state = {}
    for name, p in model.state_dict().items():
        if name.endswith(".weight") and p.dim() >= 2:
            fan_in = p[0].numel()
            v = torch.randn(p.shape) / fan_in ** 0.5
        elif name.endswith(".weight"):  # GroupNorm gamma
            v = 1.0 + 0.5 * torch.randn(p.shape)
        else:
            v = 0.5 * torch.randn(p.shape)
        state[name] = v.float()
    return state


def config_metadata(c, count):
    join = lambda v: ",".join(str(i) for i in v)
    return {"format": "pt", "in_channels": str(c.in_channels), "image_size": str(c.image_size), "ch": str(c.ch),
            "mults": join(c.mults), "num_res_blocks": str(c.num_res_blocks), "attn_res": join(c.attn_res),
            "heads": str(c.heads), "groups": str(c.groups), "num_parameters": str(count)}


def make_case(name, c):
    d = os.path.join(OUT, name)
    os.makedirs(d)
    seed(name)
    model = UNet(c)
    state = random_state(model)
    write_safetensors(os.path.join(d, "weights.safetensors"), state, config_metadata(c, num_parameters(model)))

    x = torch.randn(len(T_STEPS), c.in_channels, c.image_size, c.image_size)
    t = torch.tensor(T_STEPS, dtype=torch.int64)
    r = torch.randn(len(T_STEPS), c.in_channels, c.image_size, c.image_size)

    # The reference in float64 on the float32 values.
    model.load_state_dict({k: v.double() for k, v in state.items()})
    model.double().eval()
    xd = x.double().requires_grad_()
    y = model(xd, t)
    (y * r.double()).sum().backward()

    ref = {"x": x, "t": t, "r": r, "y": y.detach().float(), "grad.x": xd.grad.float()}
    for pname, p in model.named_parameters():
        ref["grad." + pname] = p.grad.float()
    write_safetensors(os.path.join(d, "reference.safetensors"), ref, {"format": "pt"})

    # Self-check: the independent reader gives back what was written.
    _, back = read_safetensors(os.path.join(d, "reference.safetensors"))
    assert back.keys() == ref.keys()
    print(f"{name}: {num_parameters(model)} parameters, |y| max {y.abs().max().item():.3f}, "
          f"|grad.x| max {xd.grad.abs().max().item():.3f}")


def make_mnist_default():
    c = UNetConfig()  # the demo config: the defaults of UNetConfig, as in diffusion/unet.h
    model = UNet(c)
    with open(os.path.join(OUT, "mnist_default.txt"), "w") as f:
        f.write("# bench/unet_torch.py UNet(UNetConfig()): in_channels 1, image_size 28, ch 32, mults 1,2,2,\n"
                "# 2 res blocks, attention at 7, 1 head, 8 groups. One parameter per line: name shape.\n")
        f.write(f"# num_parameters {num_parameters(model)}\n")
        for name, p in model.named_parameters():
            f.write(f"{name} {','.join(str(s) for s in p.shape)}\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    for name, c in CASES.items():
        make_case(name, c)
    make_mnist_default()
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total / 1024:.1f} KB)")
