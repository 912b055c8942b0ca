#!/usr/bin/python3
"""tests/make_fixtures_nnio.py: PyTorch reference files for tests/test_safetensors.cpp
and tests/test_optim.cpp (weights I/O, optimizers, gradient clipping, EMA).

Regenerate (Debian's PyTorch, so /usr/bin/python3, not a pyenv python):

    /usr/bin/python3 tests/make_fixtures_nnio.py

It rewrites tests/fixtures_nnio/ from scratch:

  safetensors/dtypes.safetensors       tensors of every dtype we read (F32, I64, F16,
                                       BF16, F64), dotted names, a 0-d tensor, metadata;
  safetensors/dtypes/<name>.npy        the same values (F16 / BF16 widened exactly to
                                       float32, F64 as float64), for comparison;
  safetensors/module.safetensors       the state_dict of a small torch nn.Module with
                                       children (down.0.conv1.weight, ...);
  safetensors/module/<name>.npy        its values;
  safetensors/ours.safetensors         F32 + I64 tensors whose bytes our C++ writer must
                                       reproduce exactly, with ours/<name>.npy;
  optim/<case>/param<i>.npy            initial parameters,
  optim/<case>/grad<s>_<i>.npy         the gradient of parameter i at step s = 1, 2, 3
                                       (absent: no gradient at that step),
  optim/<case>/after<s>_<i>.npy        parameter i after step s, from torch.optim;
  clip/<case>/grad<i>.npy, clipped<i>.npy, total_norm.npy   torch.nn.utils.clip_grad_norm_;
  ema/param<i>.npy, theta<s>_<i>.npy, shadow<s>_<i>.npy, shadow_fixed<s>_<i>.npy
                                       EMA with warm-up (decay 0.999) and without (0.9).

Hyperparameters are in OPTIM_CASES / CLIP_CASES / EMA_* below; tests/test_optim.cpp
repeats them (keep the two in step).

How the numbers are made (as in tests/make_fixtures.py): inputs are drawn in torch,
rounded to float32 and stored; the reference then runs in float64 on exactly those
float32 values, and results are rounded to float32 only when saved.

The .safetensors files: Debian bookworm has no python3-safetensors package, so
write_safetensors() below writes the format itself, following the reference writer
(huggingface/safetensors, safetensors/src/tensor.rs, serialize): tensors sorted by
descending dtype alignment then name, offsets contiguous from 0, compact JSON with
"__metadata__" first, the header padded with spaces to a multiple of 8. The output is
byte-identical to safetensors.torch.save_file's for the same tensors and metadata.

    /usr/bin/python3 tests/make_fixtures_nnio.py --show FILE.safetensors

prints a file's header and tensors using read_safetensors() below (json + numpy, an
independent reader), e.g. to check a file our C++ wrote.
"""
import json
import os
import shutil
import struct
import sys
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures_nnio")

# ---- the .safetensors format -------------------------------------------------------------

# dtype name, torch dtype, element size; the order is the reference's Dtype enum
# (increasing alignment), which decides the order tensors are written in.
DTYPES = [("BOOL", torch.bool, 1), ("U8", torch.uint8, 1), ("I8", torch.int8, 1),
          ("I16", torch.int16, 2), ("F16", torch.float16, 2), ("BF16", torch.bfloat16, 2),
          ("I32", torch.int32, 4), ("F32", torch.float32, 4), ("F64", torch.float64, 8),
          ("I64", torch.int64, 8)]
RANK = {torch_dtype: i for i, (_, torch_dtype, _) in enumerate(DTYPES)}
NAME = {torch_dtype: name for name, torch_dtype, _ in DTYPES}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the 16 bits
        t = t.view(torch.int16)
    return t.numpy().tobytes()  # little-endian on every machine torch runs on here


def write_safetensors(path, tensors, metadata=None):
    items = sorted(tensors.items(), key=lambda kv: (-RANK[kv[1].dtype], kv[0]))
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = dict(metadata)
    for name, t in items:
        b = tensor_bytes(t)
        header[name] = {"dtype": NAME[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """An independent reader: returns (metadata, {name: numpy array})."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    meta = header.pop("__metadata__", {})
    np_types = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "BF16": "<u2"}
    out, end = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, e_ = e["data_offsets"]
        assert b == end, f"{name}: gap or overlap at {b}"
        end = e_
        a = np.frombuffer(body[b:e_], dtype=np_types[e["dtype"]])
        if e["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.reshape(e["shape"])
    assert end == len(body), "data section not covered exactly"
    return meta, out


# ---- helpers -------------------------------------------------------------------------------

def seed(name):
    torch.manual_seed(zlib.crc32(name.encode()))


def f32(*shape):
    """Standard normal, rounded to float32, returned as float64 for the reference."""
    return torch.randn(*shape, dtype=torch.float64).float().double()


def save(path, t):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    a = t.detach().cpu()
    if a.dtype == torch.float64:
        a = a.float()  # results are rounded to float32 only when saved
    np.save(path, a.numpy())


# ---- safetensors fixtures ------------------------------------------------------------------

def make_safetensors():
    d = os.path.join(OUT, "safetensors")
    os.makedirs(d, exist_ok=True)
    seed("safetensors/dtypes")
    tensors = {
        "down.0.conv1.weight": torch.randn(2, 3, 3, 3),                    # F32
        "down.0.conv1.bias": torch.randn(2),                               # F32
        "mid.attn.to_qkv.weight": torch.randn(6, 4).half(),                # F16
        "out.scale": torch.tensor([1.0, -2.5, 3.140625, 65504.0, 6.1e-5, 1e-7]).half(),  # normals, max, subnormals
        "up.1.norm.weight": (torch.randn(5) * 100).bfloat16(),             # BF16
        "time_embed.freqs": torch.randn(4, dtype=torch.float64) * 1e3,     # F64
        "labels": torch.tensor([3, -1, 0, 2**40, 7], dtype=torch.int64),   # I64
        "step": torch.tensor(12345, dtype=torch.int64),                    # 0-d
        "empty": torch.zeros(0, 3),                                        # no elements
    }
    write_safetensors(os.path.join(d, "dtypes.safetensors"), tensors, {"format": "pt", "note": "tinydiffusion \"fixture\""})
    os.makedirs(os.path.join(d, "dtypes"), exist_ok=True)
    for name, t in tensors.items():
        a = t.float() if t.dtype in (torch.float16, torch.bfloat16) else t  # exact widening
        np.save(os.path.join(d, "dtypes", name + ".npy"), a.numpy())

    # A torch module with children: its state_dict has PyTorch's dotted names.
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 4, 3)
            self.norm1 = torch.nn.GroupNorm(2, 4)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.down = torch.nn.ModuleList([Block()])
            self.out = torch.nn.Linear(4, 2)

    seed("safetensors/module")
    net = Net()
    with torch.no_grad():  # GroupNorm starts at 1 / 0: make them distinctive
        net.down[0].norm1.weight.normal_()
        net.down[0].norm1.bias.normal_()
    state = net.state_dict()
    write_safetensors(os.path.join(d, "module.safetensors"), state, {"format": "pt"})
    os.makedirs(os.path.join(d, "module"), exist_ok=True)
    for name, t in state.items():
        np.save(os.path.join(d, "module", name + ".npy"), t.numpy())

    # F32 + I64 tensors (the dtypes we write) for the byte-for-byte comparison.
    seed("safetensors/ours")
    ours = {"b.weight": torch.randn(3, 2), "a.bias": torch.randn(3), "a.steps": torch.tensor([1, 2, 3]),
            "scalar": torch.tensor(0.5)}
    write_safetensors(os.path.join(d, "ours.safetensors"), ours, {"format": "pt"})
    os.makedirs(os.path.join(d, "ours"), exist_ok=True)
    for name, t in ours.items():
        np.save(os.path.join(d, "ours", name + ".npy"), t.numpy())

    # Self-check: the independent reader gives back what was written.
    for fname, src in (("dtypes.safetensors", tensors), ("module.safetensors", state), ("ours.safetensors", ours)):
        _, back = read_safetensors(os.path.join(d, fname))
        assert back.keys() == src.keys()
        for k in src:
            assert np.array_equal(back[k].astype(np.float64), src[k].double().numpy()), k


# ---- optimizers ----------------------------------------------------------------------------

SHAPES = [(3, 4), (4,), (2, 3, 2)]
OPTIM_CASES = {
    "sgd":          (torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    "sgd_nesterov": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    "sgd_plain":    (torch.optim.SGD, dict(lr=0.1)),
    "adam":         (torch.optim.Adam, dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
    "adam_skip":    (torch.optim.Adam, dict(lr=0.1)),  # parameter 1 has no grad at step 2
    "adamw":        (torch.optim.AdamW, dict(lr=0.1, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
}
SKIPPED = {"adam_skip": {(2, 1)}}  # (step, parameter) without a gradient


def make_optim():
    for case, (cls, kwargs) in OPTIM_CASES.items():
        d = os.path.join(OUT, "optim", case)
        seed("optim/" + case)
        params = [f32(*s).requires_grad_() for s in SHAPES]
        for i, p in enumerate(params):
            save(os.path.join(d, f"param{i}.npy"), p)
        opt = cls(params, **kwargs)
        for s in (1, 2, 3):
            for i, p in enumerate(params):
                if (s, i) in SKIPPED.get(case, ()):
                    p.grad = None
                else:
                    p.grad = f32(*p.shape)
                    save(os.path.join(d, f"grad{s}_{i}.npy"), p.grad)
            opt.step()
            for i, p in enumerate(params):
                save(os.path.join(d, f"after{s}_{i}.npy"), p)


CLIP_CASES = {"clipped": 1.0, "unclipped": 100.0}


def make_clip():
    for case, max_norm in CLIP_CASES.items():
        d = os.path.join(OUT, "clip", case)
        seed("clip/" + case)
        params = [torch.zeros(*s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
        for i, p in enumerate(params):
            p.grad = f32(*p.shape)
            save(os.path.join(d, f"grad{i}.npy"), p.grad)
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        save(os.path.join(d, "total_norm.npy"), total)
        for i, p in enumerate(params):
            save(os.path.join(d, f"clipped{i}.npy"), p.grad)


# ---- EMA -----------------------------------------------------------------------------------

EMA_DECAY, EMA_FIXED_DECAY, EMA_STEPS = 0.999, 0.9, 4


def make_ema():
    d = os.path.join(OUT, "ema")
    seed("ema")
    params = [f32(*s) for s in SHAPES]
    for i, p in enumerate(params):
        save(os.path.join(d, f"param{i}.npy"), p)
    shadow = [p.clone() for p in params]
    fixed = [p.clone() for p in params]
    for t in range(1, EMA_STEPS + 1):
        decay_t = min(EMA_DECAY, (1 + t) / (10 + t))  # the warm-up
        for i in range(len(params)):
            theta = f32(*SHAPES[i])  # the model's weights after optimizer step t
            save(os.path.join(d, f"theta{t}_{i}.npy"), theta)
            shadow[i] = decay_t * shadow[i] + (1 - decay_t) * theta
            fixed[i] = EMA_FIXED_DECAY * fixed[i] + (1 - EMA_FIXED_DECAY) * theta
            save(os.path.join(d, f"shadow{t}_{i}.npy"), shadow[i])
            save(os.path.join(d, f"shadow_fixed{t}_{i}.npy"), fixed[i])


def show(path):
    meta, tensors = read_safetensors(path)
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    print("header length", n, "| header:", data[8:8 + n].decode())
    print("metadata:", meta)
    for name, a in tensors.items():
        print(f"{name}: {a.dtype} {list(a.shape)} {a.ravel()[:6].tolist()}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--show":
        show(sys.argv[2])
        sys.exit(0)
    shutil.rmtree(OUT, ignore_errors=True)
    make_safetensors()
    make_optim()
    make_clip()
    make_ema()
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total / 1024:.1f} KB)")
