#!/usr/bin/python3
"""tests/make_fixtures_cond.py: PyTorch reference numbers for tests/test_conditioning.cpp.

Regenerate (Debian's PyTorch, so /usr/bin/python3):

    /usr/bin/python3 tests/make_fixtures_cond.py

It rewrites tests/fixtures_cond/ from scratch, one folder per case, each with
weights.safetensors (every parameter random; the case's sizes in the metadata) and
reference.safetensors (inputs, outputs and, for loss = sum(out * r), the gradient of
every parameter and every float input), from the twins in bench/unet_torch.py:

  spatial_transformer   nn::SpatialTransformer: x (2, 8, 4, 4), context (2, 3, 6), 2 heads
                        of 3 (inner 6, not the 8 channels: proj_in / proj_out change width)
  text_encoder          diffusion::SmallTextEncoder (dim 8, 2 layers, 2 heads, 12 tokens)
                        on four prompts: caption words, upper case and punctuation, an
                        unknown word, the empty prompt and one cut by truncation. Its
                        metadata also holds the prompts (joined by '|') and the
                        vocabulary (joined by ' '): the C++ tokenizer must give the same ids.
                        loss = sum(y * r) + sum(pooled * r_pool)
  unet_<cond>_<mode>    a tiny conditional UNet (8x8, ch 4, one level, attention at 8, 2
                        heads) for class/add, text/concat, text/crossattn: every mode, and
                        both conditioners (the text as a sequence and pooled; class
                        crossattn, the label as one context token, is finite-differenced in
                        the C++ test instead, to keep this folder under 300 KB); y = labels (the null label included) or token ids of
                        prompts (the empty one included); out = model(x, t, model.condition(y)),
                        gradients through the conditioner too
  text_default.txt      the parameter names and shapes of the demo UNet with cond text
                        (crossattn): the C++ UNet must have exactly these

As in tests/make_fixtures_unet.py: weights and inputs drawn in float32, the reference run
in float64 on exactly those values, results rounded to float32 when saved; one thread,
fixed seeds, reruns byte-identical.
"""
import os
import shutil
import sys
import zlib

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures_cond")
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
sys.path.insert(0, HERE)

from make_fixtures_nnio import write_safetensors  # noqa: E402
from make_fixtures_unet import random_state  # noqa: E402
from unet_torch import SmallTextEncoder, SpatialTransformer, UNet, UNetConfig, num_parameters, vocabulary  # noqa: E402

TEXT_PROMPTS = ["a handwritten seven", "An ANKLE-boot, please!", "",
                "a photo of a truck on the zebra street with far too many words"]

# One level (8x8, so attention at 8 is down.0.attn, up.0.attn and mid.attn_1): the
# many-level plumbing is tests/test_unet.cpp's; these cases are about the condition.
UNET_BASE = dict(in_channels=1, image_size=8, ch=4, mults=(1,), num_res_blocks=1, attn_res=(8,), heads=2,
                 dropout=0.0, groups=2)
TEXT = dict(text_dim=8, text_layers=1, text_heads=2, max_tokens=12)
UNET_CASES = {
    "unet_class_add": (UNetConfig(**UNET_BASE, cond="class", cond_mode="add", num_classes=3), [1, 3]),
    "unet_text_concat": (UNetConfig(**UNET_BASE, cond="text", cond_mode="concat", concat_channels=2, **TEXT),
                         ["an ankle boot", ""]),
    "unet_text_crossattn": (UNetConfig(**UNET_BASE, cond="text", cond_mode="crossattn", **TEXT),
                            ["a handwritten seven", ""]),
}
T_STEPS = [3, 917]


def seed(name):
    torch.manual_seed(zlib.crc32(name.encode()))


def save_case(name, model, state, meta, inputs, outputs, diff_inputs):
    """inputs: name -> float32/int64 tensor (diff_inputs: those with gradients, already
    float64 leaves of the run); outputs: name -> (float64 tensor, r)."""
    d = os.path.join(OUT, name)
    os.makedirs(d)
    meta = dict(meta, format="pt", num_parameters=str(num_parameters(model)))
    write_safetensors(os.path.join(d, "weights.safetensors"), state, meta)
    loss = sum((y * r.double()).sum() for y, r in outputs.values())
    loss.backward()
    ref = dict(inputs)
    for oname, (y, r) in outputs.items():
        ref[oname] = y.detach().float()
        ref["r." + oname] = r
    for iname, leaf in diff_inputs.items():
        ref["grad." + iname] = leaf.grad.float()
    for pname, p in model.named_parameters():
        ref["grad." + pname] = p.grad.float()
    write_safetensors(os.path.join(d, "reference.safetensors"), ref, {"format": "pt"})
    print(f"{name}: {num_parameters(model)} parameters, outputs " +
          ", ".join(f"{k} |max| {y.abs().max().item():.3f}" for k, (y, _) in outputs.items()))


def to_double(model, state):
    model.load_state_dict({k: v.double() for k, v in state.items()})
    model.double().eval()


def make_spatial_transformer():
    name = "spatial_transformer"
    seed(name)
    C, heads, dim_head, context_dim, groups = 8, 2, 3, 6, 2
    model = SpatialTransformer(C, heads, dim_head, context_dim, groups)
    state = random_state(model)
    x, context = torch.randn(2, C, 4, 4), torch.randn(2, 3, context_dim)
    r = torch.randn(2, C, 4, 4)
    to_double(model, state)
    xd, cd = x.double().requires_grad_(), context.double().requires_grad_()
    y = model(xd, cd)
    meta = {"channels": str(C), "heads": str(heads), "dim_head": str(dim_head), "context_dim": str(context_dim),
            "groups": str(groups)}
    save_case(name, model, state, meta, {"x": x, "context": context}, {"y": (y, r)}, {"x": xd, "context": cd})


def make_text_encoder():
    name = "text_encoder"
    seed(name)
    dim, layers, heads, max_tokens = 8, 2, 2, 12
    model = SmallTextEncoder(dim, layers, heads, max_tokens)
    state = random_state(model)
    tokens = model.tokenize(TEXT_PROMPTS)
    to_double(model, state)
    y = model.encode(tokens)
    pooled = model.pool(tokens, y)
    r, r_pool = torch.randn(y.shape), torch.randn(pooled.shape)
    meta = {"dim": str(dim), "layers": str(layers), "heads": str(heads), "max_tokens": str(max_tokens),
            "prompts": "|".join(TEXT_PROMPTS), "vocabulary": " ".join(vocabulary())}
    save_case(name, model, state, meta, {"tokens": tokens}, {"y": (y, r), "pooled": (pooled, r_pool)}, {})


def unet_metadata(c):
    join = lambda v: ",".join(str(i) for i in v)
    return {"in_channels": str(c.in_channels), "image_size": str(c.image_size), "ch": str(c.ch),
            "mults": join(c.mults), "num_res_blocks": str(c.num_res_blocks), "attn_res": join(c.attn_res),
            "heads": str(c.heads), "groups": str(c.groups), "cond": c.cond, "cond_mode": c.cond_mode,
            "num_classes": str(c.num_classes), "concat_channels": str(c.concat_channels),
            "context_dim": str(c.context_dim), "text_dim": str(c.text_dim), "text_layers": str(c.text_layers), "text_heads": str(c.text_heads),
            "max_tokens": str(c.max_tokens)}


def make_unet(name, c, ys):
    seed(name)
    model = UNet(c)
    state = random_state(model)
    x = torch.randn(len(T_STEPS), c.in_channels, c.image_size, c.image_size)
    t = torch.tensor(T_STEPS, dtype=torch.int64)
    r = torch.randn(len(T_STEPS), c.in_channels, c.image_size, c.image_size)
    y = (torch.tensor(ys, dtype=torch.int64) if c.cond == "class" else model.cond_stage_model.tokenize(ys))
    to_double(model, state)
    xd = x.double().requires_grad_()
    out = model(xd, t, model.condition(y))
    meta = unet_metadata(c)
    if c.cond == "text":
        meta["prompts"] = "|".join(ys)
    save_case(name, model, state, meta, {"x": x, "t": t, "y_cond": y}, {"out": (out, r)}, {"x": xd})


def make_text_default():
    """text_default.txt: the parameter names and shapes of UNetConfig(cond="text") (the demo
    UNet, ch 32, mults 1,2,2, with the default text encoder and crossattn), and their count."""
    model = UNet(UNetConfig(cond="text"))
    with open(os.path.join(OUT, "text_default.txt"), "w") as f:
        f.write("# bench/unet_torch.py UNet(UNetConfig(cond='text')): the demo UNet, cond_mode crossattn,\n"
                "# text encoder 64 wide, 2 layers, 4 heads, 16 tokens. One parameter per line: name shape.\n")
        f.write(f"# num_parameters {num_parameters(model)}\n")
        for name, p in model.named_parameters():
            f.write(f"{name} {','.join(str(s) for s in p.shape)}\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    make_spatial_transformer()
    make_text_encoder()
    for case, (c, ys) in UNET_CASES.items():
        make_unet(case, c, ys)
    make_text_default()
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total / 1024:.1f} KB)")
