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

Conditioning (diffusion/unet.h, cond class|text, cond_mode add|concat|crossattn): the
twins of label_emb, cond_stage_model (SmallTextEncoder, with its word tokenizer and the
built-in captions of diffusion/captions.cpp), cond_proj and the SpatialTransformer of
nn/transformer.h.

    model = UNet(UNetConfig(cond="text", cond_mode="crossattn", ...))
    tokens = model.cond_stage_model.tokenize(["a handwritten seven"])
    eps = model(x_t, t, model.condition(tokens))
"""
import math
from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class UNetConfig:  # the fields of td::diffusion::UNetConfig
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
    context_dim: int = 0  # crossattn: 0 = derived (text: text_dim, class: 4 ch)
    cond: str = "none"  # none | class | text
    cond_mode: str = "crossattn"  # add | concat | crossattn
    num_classes: int = 0
    concat_channels: int = 4
    text_dim: int = 64
    text_layers: int = 2
    text_heads: int = 4
    max_tokens: int = 16

    def context_width(self):
        if self.cond_mode != "crossattn":
            return 0
        if self.context_dim:
            return self.context_dim
        return self.text_dim if self.cond == "text" else 4 * self.ch


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
    """nn::Attention: to_q, to_k, to_v without bias, to_out with; head k gets features
    [k d, (k + 1) d). With a context: cross-attention (K, V from it). key_mask (B, Lk),
    1 keep / 0 hide: hidden keys get -1e9 added to their scores (nn::masked_attention)."""

    def __init__(self, dim, heads, dim_head=None, context_dim=0):
        super().__init__()
        self.heads = heads
        dim_head = dim_head or dim // heads
        inner = heads * dim_head
        context_dim = context_dim or dim
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x, context=None, key_mask=None):  # (B, Lq, dim) -> (B, Lq, dim)
        c = x if context is None else context

        def split(y):  # (B, L, heads d) -> (B, heads, L, d)
            return y.reshape(y.shape[0], y.shape[1], self.heads, -1).transpose(1, 2)

        q, k, v = split(self.to_q(x)), split(self.to_k(c)), split(self.to_v(c))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, heads, Lq, Lk)
        if key_mask is not None:
            scores = scores + ((key_mask.to(scores.dtype) - 1.0) * 1e9)[:, None, None, :]
        p = torch.softmax(scores, dim=-1)
        o = (p @ v).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
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


class GEGLU(nn.Module):  # nn::GEGLU: [a, g] = proj(x), a * GELU(g)
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = nn.Linear(dim_in, 2 * dim_out)

    def forward(self, x):
        a, g = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(g)


class FeedForward(nn.Module):  # nn::FeedForward, LDM's names: net.0(.proj | .0), net.1 (dropout slot), net.2
    def __init__(self, dim, mult=4, glu=True):
        super().__init__()
        inner = mult * dim
        first = GEGLU(dim, inner) if glu else nn.Sequential(nn.Linear(dim, inner), nn.GELU())
        self.net = nn.Sequential(first, nn.Identity(), nn.Linear(inner, dim))

    def forward(self, x):
        return self.net(x)


class BasicTransformerBlock(nn.Module):  # nn::BasicTransformerBlock (LDM's)
    def __init__(self, dim, heads, dim_head, context_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, dim_head)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, dim_head, context_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, 4, glu=True)

    def forward(self, h, context):
        h = h + self.attn1(self.norm1(h))
        h = h + self.attn2(self.norm2(h), context)
        return h + self.ff(self.norm3(h))


class SpatialTransformer(nn.Module):  # nn::SpatialTransformer (LDM's, depth 1)
    def __init__(self, channels, heads, dim_head, context_dim, groups):
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(groups, channels, eps=1e-5)
        self.proj_in = nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(inner, heads, dim_head, context_dim)])
        self.proj_out = nn.Conv2d(inner, channels, 1)
        nn.init.zeros_(self.proj_out.weight)  # as ours: starts as the identity
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x, context):  # (B, C, H, W), (B, Lc, context_dim) -> (B, C, H, W)
        B, C, H, W = x.shape
        h = self.proj_in(self.norm(x))
        inner = h.shape[1]
        h = h.reshape(B, inner, H * W).transpose(1, 2)  # (B, HW, inner)
        for block in self.transformer_blocks:
            h = block(h, context)
        h = h.transpose(1, 2).reshape(B, inner, H, W)
        return x + self.proj_out(h)


# ---- captions and the word tokenizer (diffusion/captions.cpp, diffusion/text_encoder.cpp) ----

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FASHION_NOUNS = ["t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                 "ankle boot"]
CIFAR_NOUNS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
NUM_PHRASINGS = 4


def with_article(noun):
    w = noun.lower()
    vowel = bool(w) and w[0] in "aeiou"
    if any(w.startswith(p) for p in ("uni", "use", "usu", "one", "eu")):
        vowel = False
    if any(w.startswith(p) for p in ("hour", "honest", "honor", "honour", "heir")):
        vowel = True
    return ("an " if vowel else "a ") + noun


def caption(dataset, label, phrasing, class_names=()):
    d = dataset.lower()
    d = {"fashion-mnist": "fashion", "fashion_mnist": "fashion", "cifar-10": "cifar10"}.get(d, d)
    if d == "mnist":
        word = DIGIT_WORDS[label]
        return ["a handwritten " + word, "the digit %d" % label, "a drawing of the number " + word, word][phrasing]
    if d in ("fashion", "cifar10"):
        np_ = with_article((FASHION_NOUNS if d == "fashion" else CIFAR_NOUNS)[label])
        last = "a grayscale photo of " if d == "fashion" else "a small photo of "
        return [np_, "a photo of " + np_, "a picture of " + np_, last + np_][phrasing]
    np_ = "class %d" % label if not class_names else with_article(class_names[label].lower())
    return ["a picture of " + np_, "a photo of " + np_, np_, "an image of " + np_][phrasing]


def split_words(text):  # runs of ASCII letters and digits, lower-cased
    words, w = [], ""
    for ch in text:
        if ch.isascii() and ch.isalnum():
            w += ch.lower()
        elif w:
            words.append(w)
            w = ""
    if w:
        words.append(w)
    return words


def vocabulary():
    words = set()
    for d in ("mnist", "fashion", "cifar10", "other"):
        for label in range(10):
            for p in range(NUM_PHRASINGS):
                words.update(split_words(caption(d, label, p)))
    return ["<pad>", "<bos>", "<eos>", "<unk>"] + sorted(words)


PAD, BOS, EOS, UNK = 0, 1, 2, 3


class TextBlock(nn.Module):  # diffusion::TextBlock: pre-LN, masked self-attention, GELU MLP
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, 4, glu=False)

    def forward(self, h, key_mask):
        h = h + self.attn(self.norm1(h), None, key_mask)
        return h + self.mlp(self.norm2(h))


class SmallTextEncoder(nn.Module):  # diffusion::SmallTextEncoder
    def __init__(self, dim, layers, heads, max_tokens):
        super().__init__()
        self.vocab = vocabulary()
        self.ids = {w: i for i, w in enumerate(self.vocab) if i >= 4}
        self.max_tokens = max_tokens
        self.token_embedding = nn.Embedding(len(self.vocab), dim)
        self.position_embedding = nn.Embedding(max_tokens, dim)
        self.layers = nn.ModuleList([TextBlock(dim, heads) for _ in range(layers)])
        self.final_layer_norm = nn.LayerNorm(dim)

    def tokenize(self, prompts):  # -> (B, max_tokens) int64
        out = torch.full((len(prompts), self.max_tokens), PAD, dtype=torch.int64)
        for b, p in enumerate(prompts):
            words = split_words(p)[: self.max_tokens - 2]
            row = [BOS] + [self.ids.get(w, UNK) for w in words] + [EOS]
            out[b, : len(row)] = torch.tensor(row)
        return out

    def encode(self, tokens):  # (B, L) -> (B, L, dim)
        L = tokens.shape[1]
        mask = (tokens != PAD).to(self.token_embedding.weight.dtype)
        h = self.token_embedding(tokens) + self.position_embedding(torch.arange(L))
        for layer in self.layers:
            h = layer(h, mask)
        return self.final_layer_norm(h)

    def pool(self, tokens, features):  # the feature at each row's first <eos> -> (B, dim)
        B, L = tokens.shape
        at = [row.index(EOS) if EOS in row else L - 1 for row in tokens.tolist()]
        return features[torch.arange(B), torch.tensor(at)]


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
        conditional = c.cond != "none"
        self.crossattn = conditional and c.cond_mode == "crossattn"
        concat = conditional and c.cond_mode == "concat"
        self.conv_in = nn.Conv2d(c.in_channels + (c.concat_channels if concat else 0), c.ch, 3, padding=1)
        context_dim = c.context_width() if conditional else 0

        def block(cin, cout):
            return ResBlock(cin, cout, temb_dim, c.groups, c.dropout)

        def AttnBlock_(width, heads, groups):  # the attention at a resolution: LDM's transformer in crossattn
            if self.crossattn:
                return SpatialTransformer(width, heads, width // heads, context_dim, groups)
            return AttnBlock(width, heads, groups)

        # Down path; skip_widths: the width of every tensor kept for a skip connection.
        skip_widths, width, res = [c.ch], c.ch, c.image_size
        self.down = nn.ModuleList()
        for i, mult in enumerate(c.mults):
            level = Level()
            for _ in range(c.num_res_blocks):
                level.block.append(block(width, c.ch * mult))
                width = c.ch * mult
                if res in c.attn_res:
                    level.attn.append(AttnBlock_(width, c.heads, c.groups))
                skip_widths.append(width)
            if i + 1 < len(c.mults):
                level.downsample = Resample(width, stride=2)
                skip_widths.append(width)
                res //= 2
            self.down.append(level)

        self.mid = nn.Module()
        self.mid.block_1 = block(width, width)
        self.mid.attn_1 = AttnBlock_(width, c.heads, c.groups)
        self.mid.block_2 = block(width, width)

        # Up path, built from the lowest resolution up, stored so that up[i] is level i.
        up = []
        for i in reversed(range(len(c.mults))):
            level = Level()
            for _ in range(c.num_res_blocks + 1):
                level.block.append(block(width + skip_widths.pop(), c.ch * c.mults[i]))
                width = c.ch * c.mults[i]
                if res in c.attn_res:
                    level.attn.append(AttnBlock_(width, c.heads, c.groups))
            if i > 0:
                level.upsample = Resample(width, stride=1)
                res *= 2
            up.insert(0, level)
        self.up = nn.ModuleList(up)

        self.norm_out = nn.GroupNorm(c.groups, width, eps=1e-5)
        self.conv_out = nn.Conv2d(width, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # as ours: the first prediction is 0
        nn.init.zeros_(self.conv_out.bias)

        # The conditioner (diffusion/unet.cpp): label_emb, or cond_stage_model (+ cond_proj)
        if conditional:
            width_c = {"add": temb_dim, "concat": c.concat_channels, "crossattn": context_dim}[c.cond_mode]
            if c.cond == "class":
                self.label_emb = nn.Embedding(c.num_classes + 1, width_c)
            else:
                self.cond_stage_model = SmallTextEncoder(c.text_dim, c.text_layers, c.text_heads, c.max_tokens)
                if not self.crossattn:
                    self.cond_proj = nn.Linear(c.text_dim, width_c)

    def condition(self, y):  # UNet::condition: y -> {"emb" | "context" | "concat": tensor}
        c = self.config
        if c.cond == "class":
            v = self.label_emb(y)                                   # (B, width)
            if c.cond_mode == "crossattn":
                return {"context": v[:, None, :]}                   # one token
        else:
            h = self.cond_stage_model.encode(y)                     # (B, L, text_dim)
            if c.cond_mode == "crossattn":
                return {"context": h}
            v = self.cond_proj(self.cond_stage_model.pool(y, h))
        if c.cond_mode == "add":
            return {"emb": v}
        S = c.image_size
        return {"concat": v[:, :, None, None].expand(-1, -1, S, S)}

    def null_condition(self, B):
        if self.config.cond == "class":
            return torch.full((B,), self.config.num_classes, dtype=torch.int64)
        return self.cond_stage_model.tokenize([""] * B)

    def forward(self, x, t, cond=None):  # x (B, C, H, W), t (B) int64 -> (B, out_channels, H, W)
        cond = cond or {}
        temb = timestep_embedding(t, self.config.ch).to(x.dtype)               # (B, ch)
        temb = self.temb.dense[1](F.silu(self.temb.dense[0](temb)))            # (B, 4 ch)
        if "emb" in cond:
            temb = temb + cond["emb"]
        if "concat" in cond:
            x = torch.cat([x, cond["concat"]], dim=1)
        context = cond.get("context")

        def attend(attn, h):
            return attn(h, context) if self.crossattn else attn(h)

        hs = [self.conv_in(x)]  # the skips, in order
        for level in self.down:
            for j, blk in enumerate(level.block):
                h = blk(hs[-1], temb)
                if len(level.attn):
                    h = attend(level.attn[j], h)
                hs.append(h)
            if hasattr(level, "downsample"):
                hs.append(level.downsample.conv(hs[-1]))

        h = self.mid.block_1(hs[-1], temb)
        h = attend(self.mid.attn_1, h)
        h = self.mid.block_2(h, temb)

        for level in reversed(self.up):
            for j, blk in enumerate(level.block):
                h = blk(torch.cat([h, hs.pop()], dim=1), temb)
                if len(level.attn):
                    h = attend(level.attn[j], h)
            if hasattr(level, "upsample"):
                h = level.upsample.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def num_parameters(model):
    return sum(p.numel() for p in model.parameters())
