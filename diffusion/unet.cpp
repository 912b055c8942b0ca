// diffusion/unet.cpp: the UNet's blocks and its forward pass (see unet.h for the map).
#include "diffusion/unet.h"

#include <algorithm>
#include <sstream>

#include "autograd/node.h"
#include "autograd/trace.h"
#include "nn/timestep_embedding.h"
#include "tensor/choice.h"
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

const Choice<Conditioning> kConditionings[] = {
    {"none", Conditioning::None}, {"class", Conditioning::Class}, {"text", Conditioning::Text}};
const Choice<CondMode> kCondModes[] = {
    {"add", CondMode::Add}, {"concat", CondMode::Concat}, {"crossattn", CondMode::CrossAttn}};

Conditioning parse_conditioning(const std::string& name) { return parse_choice(name, kConditionings, "conditioning"); }
std::string conditioning_name(Conditioning c) { return choice_name(c, kConditionings); }
CondMode parse_cond_mode(const std::string& name) { return parse_choice(name, kCondModes, "cond_mode"); }
std::string cond_mode_name(CondMode m) { return choice_name(m, kCondModes); }

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
              "before norm2); use at most ",
              width / 2, " groups (4+ channels per group is better)");
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
        check(found, "UNet config: attention resolution ", r, " is not one of the UNet's resolutions (", image_size,
              " halved per level)");
    }
    validate_conditioning();
}

void UNetConfig::validate_conditioning() const {
    check(context_dim >= 0, "UNet config: context_dim must be >= 0, got ", context_dim);
    if (cond == Conditioning::None) return;  // the conditioning fields are unused
    if (cond == Conditioning::Class)
        check(num_classes >= 1, "UNet config: cond class needs num_classes >= 1 (labels 0 .. num_classes - 1; ",
              "num_classes itself is the null label), got ", num_classes);
    if (cond == Conditioning::Text) {
        check(text_dim > 0 && text_heads > 0 && text_dim % text_heads == 0,
              "UNet config: cond text needs text_dim > 0 ", "divisible by text_heads > 0, got text_dim ", text_dim,
              ", text_heads ", text_heads);
        check(text_layers >= 1, "UNet config: cond text needs text_layers >= 1, got ", text_layers);
        int64_t need = SmallTextEncoder::longest_builtin_caption_tokens();
        check(max_tokens >= need, "UNet config: max_tokens ", max_tokens, " would cut the built-in captions short ",
              "(the longest needs ", need, " tokens with <bos> and <eos>)");
    }
    if (cond_mode != CondMode::CrossAttn)
        check(context_dim == 0, "UNet config: context_dim (", context_dim, ") is the width of cross-attention's ",
              "context; cond_mode ", cond_mode_name(cond_mode), " has none (set it to 0, or use cond_mode crossattn)");
    if (cond_mode == CondMode::Concat)
        check(concat_channels >= 1, "UNet config: cond_mode concat needs concat_channels >= 1, got ", concat_channels);
    if (cond_mode == CondMode::CrossAttn && cond == Conditioning::Text)
        check(context_dim == 0 || context_dim == text_dim, "UNet config: context_dim ", context_dim,
              " must equal text_dim ", text_dim, " (the context is the text encoder's output), or be 0 to derive it");
}

int64_t UNetConfig::context_width() const {
    if (cond == Conditioning::None) return context_dim;
    if (cond_mode != CondMode::CrossAttn) return 0;
    if (context_dim > 0) return context_dim;
    return cond == Conditioning::Text ? text_dim : temb_dim();
}

std::string UNetConfig::describe() const {
    std::ostringstream o;
    o << "ch " << ch << ", mults " << join(mults) << ", " << num_res_blocks << " res blocks, attention at "
      << join(attn_res) << ", " << heads << " head(s), dropout " << dropout << ", " << groups << " groups";
    if (cond == Conditioning::None) return o.str();
    o << ", cond " << conditioning_name(cond) << " (" << cond_mode_name(cond_mode);
    if (cond_mode == CondMode::Concat) o << ", " << concat_channels << " channels";
    if (cond_mode == CondMode::CrossAttn) o << ", context " << context_width() << " wide";
    if (cond == Conditioning::Class) o << ", " << num_classes << " classes";
    if (cond == Conditioning::Text)
        o << "; text encoder " << text_dim << " wide, " << text_layers << " layers, " << text_heads << " heads, "
          << max_tokens << " tokens";
    o << ")";
    return o.str();
}

// ---------------------------------------------------------------------------------
// ResBlock

ResBlock::ResBlock(int64_t in, int64_t out, int64_t temb_dim, int64_t groups, float dropout_, Generator* dgen,
                   Generator& init)
    : dropout(dropout_), dropout_gen(dgen) {
    norm1 = register_module("norm1", std::make_shared<nn::GroupNorm>(groups, in));
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(in, out, 3, 1, 1, 1, true, init));
    // temb_dim 0: a block without a step (the VAE's encoder and decoder, as in LDM's code)
    if (temb_dim > 0) temb_proj = register_module("temb_proj", std::make_shared<nn::Linear>(temb_dim, out, true, init));
    norm2 = register_module("norm2", std::make_shared<nn::GroupNorm>(groups, out));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(out, out, 3, 1, 1, 1, true, init));
    // DDPM initialises the last conv of each block to (almost) zero, so every block
    // starts as the identity and the deep network starts shallow.
    NoGradGuard no_grad;
    conv2->weight.fill_(0.0f);
    conv2->bias.fill_(0.0f);
    if (in != out)
        nin_shortcut = register_module("nin_shortcut", std::make_shared<nn::Conv2d>(in, out, 1, 1, 0, 1, true, init));
}

Tensor ResBlock::forward(const Tensor& x, const Tensor& temb) {
    Tensor h = norm1->forward_silu_conv(x, *conv1);  // (B, out, H, W); conv1(SiLU(GroupNorm(x)))
    if (temb_proj) {
        // BEGIN SOLUTION timestep-embedding: add temb_proj(SiLU(temb)), one number per channel, to h
        // STUB: fail("ResBlock: the step's conditioning is not implemented yet (assignment timestep-embedding)");
        Tensor t = temb_proj->forward(silu(temb));        // (B, out)
        h = h + t.reshape({t.size(0), t.size(1), 1, 1});  // the step, in every block
        // END SOLUTION timestep-embedding
    }
    float p = is_training() ? dropout : 0.0f;
    h = norm2->forward_silu_conv(h, *conv2, p, dropout_gen);  // conv2(dropout(SiLU(GroupNorm(h))))
    return (nin_shortcut ? nin_shortcut->forward(x) : x) + h;
}

// ---------------------------------------------------------------------------------
// AttnBlock

AttnBlock::AttnBlock(int64_t channels, int64_t heads, int64_t groups, int64_t context_dim, Generator& init)
    : cross(context_dim > 0) {
    norm = register_module("norm", std::make_shared<nn::GroupNorm>(groups, channels));
    attn =
        register_module("attn", std::make_shared<nn::Attention>(channels, heads, channels / heads, context_dim, init));
}

Tensor AttnBlock::forward(const Tensor& x, const Tensor& context) {
    int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    check(!cross || context.defined(), "AttnBlock: built for cross-attention but no context was given");
    Tensor seq = norm->forward(x).reshape({B, C, H * W}).permute({0, 2, 1});  // (B, HW, C): one token per pixel
    Tensor o = attn->forward(seq, cross ? context : Tensor());                // (B, HW, C)
    return x + o.permute({0, 2, 1}).reshape({B, C, H, W});
}

// ---------------------------------------------------------------------------------
// UNet

UNet::UNet(const UNetConfig& config) : config_(config), dropout_gen_(config.seed ^ 0x9e3779b97f4a7c15ULL) {
    config_.validate();
    if (config_.out_channels == 0) config_.out_channels = config_.in_channels;
    if (config_.cond != Conditioning::None)
        config_.context_dim = config_.context_width();  // 0 -> derived, for crossattn
    const UNetConfig& c = config_;
    Generator init(c.seed);
    int64_t temb = c.temb_dim();
    bool crossattn = c.cond != Conditioning::None && c.cond_mode == CondMode::CrossAttn;
    bool concat = c.cond != Conditioning::None && c.cond_mode == CondMode::Concat;
    auto is_attn = [&](int64_t res) { return std::count(c.attn_res.begin(), c.attn_res.end(), res) > 0; };
    auto res_block = [&](int64_t in, int64_t out) {
        return std::make_shared<ResBlock>(in, out, temb, c.groups, c.dropout, &dropout_gen_, init);
    };
    auto attn_block = [&](int64_t width) {
        return std::make_shared<AttnBlock>(width, c.heads, c.groups, c.context_dim, init);
    };
    auto transformer = [&](int64_t width) {  // crossattn: LDM's SpatialTransformer in the AttnBlock's place
        return std::make_shared<nn::SpatialTransformer>(width, c.heads, width / c.heads, c.context_dim, c.groups, init);
    };
    // Level L's attention after its next block, under attns.j (down.i.attn.j, up.i.attn.j)
    auto add_attention = [&](Level& L, nn::ModuleList& attns, int64_t width) {
        if (crossattn) L.transformers.push_back(attns.push_back(transformer(width)));
        else L.attns.push_back(attns.push_back(attn_block(width)));
    };

    auto temb_c = register_module("temb", std::make_shared<nn::ModuleDict>());
    auto dense = temb_c->add("dense", std::make_shared<nn::ModuleList>());
    temb_dense0_ = dense->push_back(std::make_shared<nn::Linear>(c.ch, temb, true, init));
    temb_dense1_ = dense->push_back(std::make_shared<nn::Linear>(temb, temb, true, init));
    int64_t in = c.in_channels + (concat ? c.concat_channels : 0);  // concat: x_t and the condition's planes
    conv_in_ = register_module("conv_in", std::make_shared<nn::Conv2d>(in, c.ch, 3, 1, 1, 1, true, init));

    // Down path: remember each output's width; the up path concatenates them back.
    std::vector<int64_t> skip_widths = {c.ch};
    int64_t width = c.ch, res = c.image_size;
    auto down_c = register_module("down", std::make_shared<nn::ModuleList>());
    for (size_t i = 0; i < c.mults.size(); ++i) {
        auto lvl = down_c->push_back(std::make_shared<nn::ModuleDict>());
        auto blocks = lvl->add("block", std::make_shared<nn::ModuleList>());
        auto attns = is_attn(res) ? lvl->add("attn", std::make_shared<nn::ModuleList>()) : nullptr;
        Level L;
        int64_t out = c.ch * c.mults[i];
        for (int64_t j = 0; j < c.num_res_blocks; ++j) {
            L.blocks.push_back(blocks->push_back(res_block(width, out)));
            width = out;
            if (attns) add_attention(L, *attns, width);
            skip_widths.push_back(width);
        }
        if (i + 1 < c.mults.size()) {  // stride-2 3x3 conv: H -> H / 2
            auto ds = lvl->add("downsample", std::make_shared<nn::ModuleDict>());
            L.resample = ds->add("conv", std::make_shared<nn::Conv2d>(width, width, 3, 2, 1, 1, true, init));
            skip_widths.push_back(width);
            res /= 2;
        }
        down_.push_back(L);
    }

    auto mid = register_module("mid", std::make_shared<nn::ModuleDict>());
    mid_block_1_ = mid->add("block_1", res_block(width, width));
    if (crossattn) mid_transformer_ = mid->add("attn_1", transformer(width));
    else mid_attn_1_ = mid->add("attn_1", attn_block(width));
    mid_block_2_ = mid->add("block_2", res_block(width, width));

    // Up path, built from the lowest resolution back up; stored by level index so the
    // names match the reference (up.0 is the full-resolution level).
    auto up_c = register_module("up", std::make_shared<nn::ModuleList>());
    up_.resize(c.mults.size());
    std::vector<std::shared_ptr<nn::ModuleDict>> up_levels(c.mults.size());
    for (int64_t i = (int64_t)c.mults.size() - 1; i >= 0; --i) {
        auto lvl = std::make_shared<nn::ModuleDict>();
        up_levels[i] = lvl;
        auto blocks = lvl->add("block", std::make_shared<nn::ModuleList>());
        auto attns = is_attn(res) ? lvl->add("attn", std::make_shared<nn::ModuleList>()) : nullptr;
        Level& L = up_[i];
        int64_t out = c.ch * c.mults[i];
        for (int64_t j = 0; j <= c.num_res_blocks; ++j) {
            int64_t skip = skip_widths.back();
            skip_widths.pop_back();
            L.blocks.push_back(blocks->push_back(res_block(width + skip, out)));
            width = out;
            if (attns) add_attention(L, *attns, width);
        }
        if (i > 0) {  // nearest x2, then a 3x3 conv to smooth the blocky copy
            auto us = lvl->add("upsample", std::make_shared<nn::ModuleDict>());
            L.resample = us->add("conv", std::make_shared<nn::Conv2d>(width, width, 3, 1, 1, 1, true, init));
            res *= 2;
        }
    }
    for (auto& lvl : up_levels) up_c->push_back(lvl);  // up.0 first

    norm_out_ = register_module("norm_out", std::make_shared<nn::GroupNorm>(c.groups, width));
    conv_out_ =
        register_module("conv_out", std::make_shared<nn::Conv2d>(width, c.out_channels, 3, 1, 1, 1, true, init));

    // The conditioner, from its own generator (the weights above do not depend on it).
    if (c.cond != Conditioning::None) {
        Generator cond_init(c.seed ^ 0x5851f42d4c957f2dULL);
        // the width the condition vector needs: the time embedding's, the planes', the context's
        int64_t width_c = c.cond_mode == CondMode::Add      ? temb
                          : c.cond_mode == CondMode::Concat ? c.concat_channels
                                                            : c.context_dim;
        if (c.cond == Conditioning::Class) {
            label_emb_ =
                register_module("label_emb", std::make_shared<nn::Embedding>(c.num_classes + 1, width_c, cond_init));
        } else {
            cond_stage_model_ = register_module(
                "cond_stage_model",
                std::make_shared<SmallTextEncoder>(c.text_dim, c.text_layers, c.text_heads, c.max_tokens, cond_init));
            if (!crossattn)  // add / concat take one vector: the pooled text, projected
                cond_proj_ =
                    register_module("cond_proj", std::make_shared<nn::Linear>(c.text_dim, width_c, true, cond_init));
        }
    }
    NoGradGuard no_grad;  // the first prediction is 0: the loss starts at E[eps^2] = 1
    conv_out_->weight.fill_(0.0f);
    conv_out_->bias.fill_(0.0f);
}

// ---------------------------------------------------------------------------------
// Conditioning

UNet::Cond UNet::condition(const Tensor& y) {
    const UNetConfig& c = config_;
    check(c.cond != Conditioning::None, "UNet::condition: this UNet is unconditional (cond none); it takes no y");
    check(y.defined() && y.dtype() == DType::Int64, "UNet::condition: y must be int64 (labels or token ids)");
    Cond out;
    Tensor v;  // add / concat: one vector per sample, (B, temb_dim) or (B, concat_channels)
    if (c.cond == Conditioning::Class) {
        check(y.dim() == 1, "UNet::condition: cond class takes labels (B) int64, got ", y.shape());
        for (int64_t label : y.to(Device::CPU).to_vector_i64())
            check(label >= 0 && label <= c.num_classes, "UNet::condition: label ", label, " is not in [0, ",
                  c.num_classes, "] (", c.num_classes, " is the null label)");
        Tensor e = label_emb_->forward(y);  // (B, width): one learned vector per class
        if (c.cond_mode == CondMode::CrossAttn) out.context = e.unsqueeze(1);  // (B, 1, context_dim): one token
        v = e;
    } else {
        check(y.dim() == 2, "UNet::condition: cond text takes token ids (B, L) int64 ",
              "(text_encoder().tokenize(prompts)), got ", y.shape());
        Tensor h = cond_stage_model_->encode(y);  // tau_theta(y): (B, L, text_dim)
        if (c.cond_mode == CondMode::CrossAttn) out.context = h;
        else v = cond_proj_->forward(cond_stage_model_->pool(y, h));  // (B, text_dim) -> (B, width)
    }
    if (c.cond_mode == CondMode::Add) out.emb = v;
    if (c.cond_mode == CondMode::Concat) out.concat = as_planes(v);
    return out;
}

Tensor UNet::as_planes(const Tensor& v) const {
    int64_t B = v.size(0), k = v.size(1), S = config_.image_size;
    return v.reshape({B, k, 1, 1}).expand({B, k, S, S});  // the same value at every pixel
}

Tensor UNet::null_condition(int64_t B) const {
    const UNetConfig& c = config_;
    check(c.cond != Conditioning::None, "UNet::null_condition: this UNet is unconditional (cond none)");
    // on the UNet's device, ready for condition() and for cat() with conditions already there
    if (c.cond == Conditioning::Class)
        return Tensor::from_vector_i64(std::vector<int64_t>(B, c.num_classes), {B}).to(device());
    return cond_stage_model_->tokenize(std::vector<std::string>(B, "")).to(device());  // the empty prompt
}

TextEncoder& UNet::text_encoder() {
    check(cond_stage_model_ != nullptr, "UNet::text_encoder: this UNet has no text encoder (cond ",
          conditioning_name(config_.cond), ")");
    return *cond_stage_model_;
}

Tensor UNet::attention(Level& L, size_t j, const Tensor& h, const Cond& cond) {
    if (!L.transformers.empty()) return L.transformers[j]->forward(h, cond.context);
    if (!L.attns.empty()) return L.attns[j]->forward(h, cond.context);
    return h;  // no attention at this resolution
}

Tensor UNet::forward(const Tensor& x, const Tensor& t, const Cond& cond) {
    const UNetConfig& c = config_;
    check(x.dim() == 4 && x.size(1) == c.in_channels && x.size(2) == c.image_size && x.size(3) == c.image_size,
          "UNet: input ", x.shape(), " does not match the model (", c.in_channels, " channels, ", c.image_size, "x",
          c.image_size, ")");
    check(t.dim() == 1 && t.size(0) == x.size(0) && t.dtype() == DType::Int64,
          "UNet: t must be (B) int64 with B = ", x.size(0), ", got ", t.shape());

    int64_t B = x.size(0);
    if (c.cond != Conditioning::None) {  // a conditional UNet needs its condition (the null one for "none")
        const Tensor& need = c.cond_mode == CondMode::Add      ? cond.emb
                             : c.cond_mode == CondMode::Concat ? cond.concat
                                                               : cond.context;
        check(need.defined() && need.size(0) == B, "UNet: built for cond ", conditioning_name(c.cond), " (",
              cond_mode_name(c.cond_mode), ") but given ",
              need.defined() ? "a condition for " + std::to_string(need.size(0)) + " samples" : std::string("none"),
              " with ", B, " inputs; pass condition(y), or condition(null_condition(B)) for no condition");
    }
    check(!cond.concat.defined() || (c.cond_mode == CondMode::Concat && c.cond != Conditioning::None),
          "UNet: a concat condition was given to a UNet not built for cond_mode concat");

    // Time embedding: sinusoids of t -> MLP -> (B, 4 ch); a condition embedding adds on.
    Tensor temb = nn::timestep_embedding(t.to(DType::Float32), c.ch);  // (B, ch)
    temb = temb_dense1_->forward(silu(temb_dense0_->forward(temb)));   // (B, 4 ch)
    if (cond.emb.defined()) temb = temb + cond.emb;
    trace("unet.temb", temb, "time embedding: MLP(sinusoidal(t)), added in every ResBlock");
    // each block's output under its parameter path, e.g. "unet.down.1.block.0"
    auto tr = [](const char* path, int64_t i, const char* kind, size_t j, const Tensor& v) {
        if (tracing())
            trace("unet." + std::string(path) + "." + std::to_string(i) + "." + kind + "." + std::to_string(j), v);
    };

    Tensor input = cond.concat.defined() ? cat({x, cond.concat}, 1) : x;  // concat: (B, C + k, H, W)
    std::vector<Tensor> hs = {conv_in_->forward(input)};                  // the skips, in order
    trace("unet.conv_in", hs.back());
    for (size_t i = 0; i < down_.size(); ++i) {
        Level& L = down_[i];
        for (size_t j = 0; j < L.blocks.size(); ++j) {
            Tensor h = attention(L, j, L.blocks[j]->forward(hs.back(), temb), cond);
            tr("down", (int64_t)i, L.attns.empty() && L.transformers.empty() ? "block" : "attn", j, h);
            hs.push_back(h);
        }
        if (L.resample) {
            hs.push_back(L.resample->forward(hs.back()));
            tr("down", (int64_t)i, "downsample", 0, hs.back());
        }
    }

    Tensor h = mid_block_1_->forward(hs.back(), temb);
    h = mid_transformer_ ? mid_transformer_->forward(h, cond.context) : mid_attn_1_->forward(h, cond.context);
    h = mid_block_2_->forward(h, temb);
    trace("unet.mid", h);

    for (int64_t i = (int64_t)up_.size() - 1; i >= 0; --i) {
        Level& L = up_[i];
        for (size_t j = 0; j < L.blocks.size(); ++j) {
            h = L.blocks[j]->forward(cat({h, hs.back()}, 1), temb);  // skip concatenation
            hs.pop_back();
            h = attention(L, j, h, cond);
            tr("up", i, L.attns.empty() && L.transformers.empty() ? "block" : "attn", j, h);
        }
        if (L.resample) {
            h = L.resample->forward(upsample_nearest2d(h, 2));
            tr("up", i, "upsample", 0, h);
        }
    }
    Tensor out = norm_out_->forward_silu_conv(h, *conv_out_);  // conv_out(SiLU(GroupNorm(h)))
    trace("unet.out", out, "conv_out(SiLU(norm_out(h))): the UNet's prediction");
    return out;
}

}  // namespace td::diffusion
