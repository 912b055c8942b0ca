// diffusion/unet.cpp: the UNet's blocks and its forward pass (see unet.h for the map).
#include "diffusion/unet.h"

#include <algorithm>
#include <sstream>

#include "autograd/node.h"
#include "autograd/trace.h"
#include "nn/timestep_embedding.h"
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td::diffusion {

namespace {

std::string join(const std::vector<int64_t>& v) {
    std::ostringstream o;
    for (size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
    return v.empty() ? "none" : o.str();
}

}  // namespace

void UNetConfig::validate() const {
    check(in_channels > 0, "UNet config: in_channels must be > 0, got ", in_channels);
    check(out_channels >= 0, "UNet config: out_channels must be >= 0, got ", out_channels);
    check(ch >= 4, "UNet config: ch must be >= 4 (the time embedding has ch dimensions), got ", ch);
    check(ch > 0 && num_res_blocks > 0 && heads > 0 && groups > 0,
          "UNet config: ch, res_blocks, heads and groups must be > 0 (got ch ", ch, ", res_blocks ", num_res_blocks,
          ", heads ", heads, ", groups ", groups, ")");
    check(!mults.empty() && mults.size() <= 6, "UNet config: mults needs 1 to 6 levels, got ", mults.size());
    check(dropout >= 0.0f && dropout < 1.0f, "UNet config: dropout must be in [0, 1), got ", dropout);
    int64_t res = image_size;
    for (size_t i = 0; i < mults.size(); ++i) {
        check(mults[i] > 0, "UNet config: mults must be > 0, got ", join(mults));
        int64_t width = ch * mults[i];
        check(width % groups == 0, "UNet config: GroupNorm groups ", groups, " do not divide level ", i, "'s width ",
              width, " (ch ", ch, " x mult ", mults[i], ")");
        // The step's embedding is added per channel just before norm2; a group of one
        // channel normalises that constant away, and the block cannot see t at all.
        check(width / groups >= 2, "UNet config: ", groups, " GroupNorm groups on level ", i, "'s ", width,
              " channels leave one channel per group, which erases the time embedding (added per channel "
              "before norm2); use at most ", width / 2, " groups (4+ channels per group is better)");
        check(width % heads == 0, "UNet config: ", heads, " heads do not divide level ", i, "'s width ", width);
        if (i + 1 < mults.size()) {
            check(res % 2 == 0, "UNet config: image size ", image_size, " cannot be halved ", mults.size() - 1,
                  " times (level ", i, " has resolution ", res, "); use fewer mults");
            res /= 2;
        }
    }
    check(ch % groups == 0, "UNet config: groups ", groups, " do not divide ch ", ch);
    for (int64_t r : attn_res) {
        bool found = false;
        for (int64_t i = 0, rr = image_size; i < (int64_t)mults.size(); ++i, rr /= 2) found |= rr == r;
        check(found, "UNet config: attention resolution ", r, " is not one of the UNet's resolutions (",
              image_size, " halved per level)");
    }
}

std::string UNetConfig::describe() const {
    std::ostringstream o;
    o << "ch " << ch << ", mults " << join(mults) << ", " << num_res_blocks << " res blocks, attention at "
      << join(attn_res) << ", " << heads << " head(s), dropout " << dropout << ", " << groups << " groups";
    return o.str();
}

// ---------------------------------------------------------------------------------
// ResBlock

ResBlock::ResBlock(int64_t in, int64_t out, int64_t temb_dim, int64_t groups, float dropout_, Generator* dgen,
                   Generator& init)
    : dropout(dropout_), dropout_gen(dgen) {
    norm1 = register_module("norm1", std::make_shared<nn::GroupNorm>(groups, in));
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(in, out, 3, 1, 1, 1, true, init));
    temb_proj = register_module("temb_proj", std::make_shared<nn::Linear>(temb_dim, out, true, init));
    norm2 = register_module("norm2", std::make_shared<nn::GroupNorm>(groups, out));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(out, out, 3, 1, 1, 1, true, init));
    // DDPM initialises the last conv of each block to (almost) zero, so every block
    // starts as the identity and the deep network starts shallow.
    NoGradGuard no_grad;
    conv2->weight.fill_(0.0f);
    conv2->bias.fill_(0.0f);
    if (in != out) nin_shortcut = register_module("nin_shortcut", std::make_shared<nn::Conv2d>(in, out, 1, 1, 0, 1, true, init));
}

Tensor ResBlock::forward(const Tensor& x, const Tensor& temb) {
    Tensor h = conv1->forward(silu(norm1->forward(x)));                    // (B, out, H, W)
    Tensor t = temb_proj->forward(silu(temb));                             // (B, out)
    h = h + t.reshape({t.size(0), t.size(1), 1, 1});                       // the step, in every block
    h = silu(norm2->forward(h));
    if (dropout > 0.0f) h = td::dropout(h, dropout, is_training(), *dropout_gen);
    h = conv2->forward(h);
    return (nin_shortcut ? nin_shortcut->forward(x) : x) + h;
}

// ---------------------------------------------------------------------------------
// AttnBlock

AttnBlock::AttnBlock(int64_t channels, int64_t heads, int64_t groups, int64_t context_dim, Generator& init)
    : cross(context_dim > 0) {
    norm = register_module("norm", std::make_shared<nn::GroupNorm>(groups, channels));
    attn = register_module("attn", std::make_shared<nn::Attention>(channels, heads, channels / heads, context_dim, init));
}

Tensor AttnBlock::forward(const Tensor& x, const Tensor& context) {
    int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    check(!cross || context.defined(), "AttnBlock: built for cross-attention but no context was given");
    Tensor seq = norm->forward(x).reshape({B, C, H * W}).permute({0, 2, 1});  // (B, HW, C): one token per pixel
    Tensor o = attn->forward(seq, cross ? context : Tensor());                 // (B, HW, C)
    return x + o.permute({0, 2, 1}).reshape({B, C, H, W});
}

// ---------------------------------------------------------------------------------
// UNet

UNet::UNet(const UNetConfig& config) : config_(config), dropout_gen_(config.seed ^ 0x9e3779b97f4a7c15ULL) {
    config_.validate();
    if (config_.out_channels == 0) config_.out_channels = config_.in_channels;
    const UNetConfig& c = config_;
    Generator init(c.seed);
    int64_t temb = c.temb_dim();
    auto is_attn = [&](int64_t res) { return std::count(c.attn_res.begin(), c.attn_res.end(), res) > 0; };
    auto res_block = [&](int64_t in, int64_t out) {
        return std::make_shared<ResBlock>(in, out, temb, c.groups, c.dropout, &dropout_gen_, init);
    };
    auto attn_block = [&](int64_t width) {
        return std::make_shared<AttnBlock>(width, c.heads, c.groups, c.context_dim, init);
    };

    auto temb_c = register_module("temb", std::make_shared<Container>());
    auto dense = temb_c->add("dense", std::make_shared<Container>());
    temb_dense0_ = dense->add("0", std::make_shared<nn::Linear>(c.ch, temb, true, init));
    temb_dense1_ = dense->add("1", std::make_shared<nn::Linear>(temb, temb, true, init));
    conv_in_ = register_module("conv_in", std::make_shared<nn::Conv2d>(c.in_channels, c.ch, 3, 1, 1, 1, true, init));

    // Down path: remember each output's width; the up path concatenates them back.
    std::vector<int64_t> skip_widths = {c.ch};
    int64_t width = c.ch, res = c.image_size;
    auto down_c = register_module("down", std::make_shared<Container>());
    for (size_t i = 0; i < c.mults.size(); ++i) {
        auto lvl = down_c->add(std::to_string(i), std::make_shared<Container>());
        auto blocks = lvl->add("block", std::make_shared<Container>());
        auto attns = is_attn(res) ? lvl->add("attn", std::make_shared<Container>()) : nullptr;
        Level L;
        int64_t out = c.ch * c.mults[i];
        for (int64_t j = 0; j < c.num_res_blocks; ++j) {
            L.blocks.push_back(blocks->add(std::to_string(j), res_block(width, out)));
            width = out;
            if (attns) L.attns.push_back(attns->add(std::to_string(j), attn_block(width)));
            skip_widths.push_back(width);
        }
        if (i + 1 < c.mults.size()) {  // stride-2 3x3 conv: H -> H / 2
            auto ds = lvl->add("downsample", std::make_shared<Container>());
            L.resample = ds->add("conv", std::make_shared<nn::Conv2d>(width, width, 3, 2, 1, 1, true, init));
            skip_widths.push_back(width);
            res /= 2;
        }
        down_.push_back(L);
    }

    auto mid = register_module("mid", std::make_shared<Container>());
    mid_block_1_ = mid->add("block_1", res_block(width, width));
    mid_attn_1_ = mid->add("attn_1", attn_block(width));
    mid_block_2_ = mid->add("block_2", res_block(width, width));

    // Up path, built from the lowest resolution back up; stored by level index so the
    // names match the reference (up.0 is the full-resolution level).
    auto up_c = register_module("up", std::make_shared<Container>());
    up_.resize(c.mults.size());
    std::vector<std::shared_ptr<Container>> up_levels(c.mults.size());
    for (int64_t i = (int64_t)c.mults.size() - 1; i >= 0; --i) {
        auto lvl = std::make_shared<Container>();
        up_levels[i] = lvl;
        auto blocks = lvl->add("block", std::make_shared<Container>());
        auto attns = is_attn(res) ? lvl->add("attn", std::make_shared<Container>()) : nullptr;
        Level& L = up_[i];
        int64_t out = c.ch * c.mults[i];
        for (int64_t j = 0; j <= c.num_res_blocks; ++j) {
            int64_t skip = skip_widths.back();
            skip_widths.pop_back();
            L.blocks.push_back(blocks->add(std::to_string(j), res_block(width + skip, out)));
            width = out;
            if (attns) L.attns.push_back(attns->add(std::to_string(j), attn_block(width)));
        }
        if (i > 0) {  // nearest x2, then a 3x3 conv to smooth the blocky copy
            auto us = lvl->add("upsample", std::make_shared<Container>());
            L.resample = us->add("conv", std::make_shared<nn::Conv2d>(width, width, 3, 1, 1, 1, true, init));
            res *= 2;
        }
    }
    for (size_t i = 0; i < up_levels.size(); ++i) up_c->add(std::to_string(i), up_levels[i]);

    norm_out_ = register_module("norm_out", std::make_shared<nn::GroupNorm>(c.groups, width));
    conv_out_ = register_module("conv_out", std::make_shared<nn::Conv2d>(width, c.out_channels, 3, 1, 1, 1, true, init));
    NoGradGuard no_grad;  // the first prediction is 0: the loss starts at E[eps^2] = 1
    conv_out_->weight.fill_(0.0f);
    conv_out_->bias.fill_(0.0f);
}

Tensor UNet::forward(const Tensor& x, const Tensor& t, const Cond& cond) {
    const UNetConfig& c = config_;
    check(x.dim() == 4 && x.size(1) == c.in_channels && x.size(2) == c.image_size && x.size(3) == c.image_size,
          "UNet: input ", shape_str(x.shape()), " does not match the model (", c.in_channels, " channels, ",
          c.image_size, "x", c.image_size, ")");
    check(t.dim() == 1 && t.size(0) == x.size(0) && t.dtype() == DType::Int64, "UNet: t must be (B) int64 with B = ",
          x.size(0), ", got ", shape_str(t.shape()));

    // Time embedding: sinusoids of t -> MLP -> (B, 4 ch); a condition embedding adds on.
    Tensor temb = nn::timestep_embedding(t.to(DType::Float32), c.ch);  // (B, ch)
    temb = temb_dense1_->forward(silu(temb_dense0_->forward(temb)));     // (B, 4 ch)
    if (cond.emb.defined()) temb = temb + cond.emb;
    trace("unet.temb", temb, "time embedding: MLP(sinusoidal(t)), added in every ResBlock");
    // each block's output under its parameter path, e.g. "unet.down.1.block.0"
    auto tr = [](const char* path, int64_t i, const char* kind, size_t j, const Tensor& v) {
        if (tracing()) trace("unet." + std::string(path) + "." + std::to_string(i) + "." + kind + "." + std::to_string(j), v);
    };

    std::vector<Tensor> hs = {conv_in_->forward(x)};  // the skips, in order
    trace("unet.conv_in", hs.back());
    for (size_t i = 0; i < down_.size(); ++i) {
        Level& L = down_[i];
        for (size_t j = 0; j < L.blocks.size(); ++j) {
            Tensor h = L.blocks[j]->forward(hs.back(), temb);
            if (!L.attns.empty()) h = L.attns[j]->forward(h, cond.context);
            tr("down", (int64_t)i, L.attns.empty() ? "block" : "attn", j, h);
            hs.push_back(h);
        }
        if (L.resample) {
            hs.push_back(L.resample->forward(hs.back()));
            tr("down", (int64_t)i, "downsample", 0, hs.back());
        }
    }

    Tensor h = mid_block_1_->forward(hs.back(), temb);
    h = mid_attn_1_->forward(h, cond.context);
    h = mid_block_2_->forward(h, temb);
    trace("unet.mid", h);

    for (int64_t i = (int64_t)up_.size() - 1; i >= 0; --i) {
        Level& L = up_[i];
        for (size_t j = 0; j < L.blocks.size(); ++j) {
            h = L.blocks[j]->forward(cat({h, hs.back()}, 1), temb);  // skip concatenation
            hs.pop_back();
            if (!L.attns.empty()) h = L.attns[j]->forward(h, cond.context);
            tr("up", i, L.attns.empty() ? "block" : "attn", j, h);
        }
        if (L.resample) {
            h = L.resample->forward(upsample_nearest2d(h, 2));
            tr("up", i, "upsample", 0, h);
        }
    }
    Tensor out = conv_out_->forward(silu(norm_out_->forward(h)));
    trace("unet.out", out, "conv_out(SiLU(norm_out(h))): the UNet's prediction");
    return out;
}

}  // namespace td::diffusion
