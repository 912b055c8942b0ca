// diffusion/unet.h: eps_theta(x_t, t), the UNet of DDPM (Ho et al. 2020, appendix B),
// which follows PixelCNN++ (Salimans et al. 2017) and the Wide ResNet.
//
//   x_t (B, C, H, W) --conv_in--> h, ch channels
//   down: per level i (resolution H / 2^i), num_res_blocks ResBlocks of ch * mults[i]
//         channels (+ self-attention where the resolution is in attn_res); each output
//         is kept for a skip connection; between levels a stride-2 3x3 conv halves H, W
//   mid:  ResBlock, attention, ResBlock at the lowest resolution
//   up:   per level, reversed, num_res_blocks + 1 ResBlocks, each fed
//         cat(h, the matching skip) along channels; nearest x2 + 3x3 conv between levels
//   out:  GroupNorm, SiLU, 3x3 conv back to C channels (initialised to zero)
//
// The step t enters through the sinusoidal embedding (nn/timestep_embedding.h), an MLP
// (Linear ch -> 4 ch, SiLU, Linear 4 ch -> 4 ch), and is added, projected to each
// block's width, inside every ResBlock.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "diffusion/text_encoder.h"
#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/layers.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "nn/transformer.h"
#include "tensor/random.h"

namespace td::diffusion {

// Conditioning (latent diffusion's switch, Rombach et al. 2022 sec. 3.3 and their code):
// eps_theta(x_t, t, y) for a class label y (cond class) or a prompt y (cond text). The
// UNet owns the network that turns y into something it can use, the "conditioner":
//   class: label_emb, an nn::Embedding of num_classes + 1 rows (the last is the null
//          label of classifier-free guidance, diffusion/guidance.h)
//   text:  cond_stage_model, a TextEncoder (diffusion/text_encoder.h), LDM's name for
//          tau_theta; plus cond_proj (Linear) to the width add / concat need
// and the condition enters one of three ways (cond_mode):
//   add        a vector added to the time embedding, so every ResBlock sees it (LDM's
//              "adm", the class conditioning of Dhariwal & Nichol's ADM): label_emb's row,
//              or cond_proj(the pooled text vector)
//   concat     extra input channels: cat(x_t, c) before conv_in. LDM uses it for spatial
//              conditions (a mask, a low-resolution image); a label or pooled text here is
//              a vector of concat_channels broadcast over the H x W plane
//   crossattn  the attention blocks become SpatialTransformers (nn/transformer.h) whose
//              cross-attention reads the context: K, V = W_K tau(y), W_V tau(y). Text: the
//              encoder's (B, L, text_dim) sequence; class: one token, label_emb's row
//              (softmax over a single key is 1, so every pixel receives the same
//              W_V tau(y): for a class, cross-attention is a learned per-class shift
//              inside each transformer; with text, each pixel picks its words)
// Everything else (names, init order, outputs) of an unconditional UNet is as before;
// the conditioner draws its initial weights from a generator of its own (seed ^ a
// constant), so the rest of a class-conditional UNet in add mode starts from exactly the
// weights of the unconditional one with the same seed.
//
// (A UNet built with cond none and context_dim > 0 has no conditioner of its own: its
// AttnBlocks cross-attend to Cond::context, whatever produced it.)
enum class Conditioning { None, Class, Text };
enum class CondMode { Add, Concat, CrossAttn };
// The words of the model file and the CLI: "none", "class", "text" and "add", "concat",
// "crossattn". A parse_ function throws td::Error listing them for any other word.
Conditioning parse_conditioning(const std::string& name);
std::string conditioning_name(Conditioning c);
CondMode parse_cond_mode(const std::string& name);
std::string cond_mode_name(CondMode m);

struct UNetConfig {
    int64_t in_channels = 1;                 // image channels (1 for MNIST, 3 for CIFAR-10, latent channels for LDM)
    int64_t out_channels = 0;                // 0: same as in_channels
    int64_t image_size = 28;                 // H = W of the input (attn_res is stated in pixels of this grid)
    int64_t ch = 32;                         // base width
    std::vector<int64_t> mults = {1, 2, 2};  // width of level i = ch * mults[i]
    int64_t num_res_blocks = 2;
    std::vector<int64_t> attn_res = {7};  // resolutions (H) that get self-attention
    int64_t heads = 1;
    float dropout = 0.1f;
    int64_t groups = 8;       // GroupNorm groups; must divide every block's width
    int64_t context_dim = 0;  // crossattn: the width of the context tokens; 0 = derived (text: text_dim,
                              // class: temb_dim). cond none: > 0 makes the AttnBlocks cross-attend
    uint64_t seed = 0;        // initial weights and the dropout masks

    // Conditioning (see above). Fields of a mode or conditioner that is not used are ignored.
    Conditioning cond = Conditioning::None;
    CondMode cond_mode = CondMode::CrossAttn;
    int64_t num_classes = 0;      // class: labels 0 .. num_classes - 1; num_classes = "no condition"
    int64_t concat_channels = 4;  // concat: channels the condition adds to x_t
    int64_t text_dim = 64;        // text: the encoder's width (and the context's, in crossattn)
    int64_t text_layers = 2;      // text: transformer blocks
    int64_t text_heads = 4;       // text: attention heads (divide text_dim)
    int64_t max_tokens = 16;      // text: tokens per prompt, <bos> and <eos> included

    int64_t temb_dim() const { return 4 * ch; }
    // crossattn: context_dim, or what it derives to when 0; 0 for other modes
    int64_t context_width() const;
    // Throws td::Error naming the bad field (sizes that do not divide, an image size
    // that cannot be halved len(mults) - 1 times, a conditioning that does not fit, ...).
    void validate() const;
    void validate_conditioning() const;  // the cond* and text* fields (part of validate())
    std::string describe() const;        // "ch 32, mults 1,2,2, 2 res blocks, attention at 7, ..."
};

// ResBlock (DDPM's ResnetBlock): h = conv1(SiLU(norm1(x))) + temb_proj(SiLU(temb)),
// h = conv2(dropout(SiLU(norm2(h)))), out = shortcut(x) + h, the shortcut a 1x1 conv
// (nin_shortcut) when the width changes. Built with temb_dim = 0 it has no temb_proj and
// forward ignores temb (the VAE's blocks, diffusion/vae.h).
class ResBlock : public nn::Module {
public:
    ResBlock(int64_t in, int64_t out, int64_t temb_dim, int64_t groups, float dropout, Generator* dropout_gen,
             Generator& init);
    Tensor forward(const Tensor& x,
                   const Tensor& temb = Tensor());  // x (B, in, H, W), temb (B, temb_dim) -> (B, out, H, W)
    std::string name() const override { return "ResBlock"; }

    std::shared_ptr<nn::GroupNorm> norm1, norm2;
    std::shared_ptr<nn::Conv2d> conv1, conv2, nin_shortcut;  // nin_shortcut null when in == out
    std::shared_ptr<nn::Linear> temb_proj;                   // null when built with temb_dim = 0
    float dropout;
    Generator* dropout_gen;  // the UNet's, so one (seed, offset) pair covers every mask
};

// Attention over the H * W positions of a feature map, as a residual:
// out = x + to_out(softmax(Q K^T / sqrt(d)) V), Q, K, V from norm(x) seen as (B, HW, C);
// with a context, K and V come from it instead (cross-attention, LDM sec. 3.3).
class AttnBlock : public nn::Module {
public:
    AttnBlock(int64_t channels, int64_t heads, int64_t groups, int64_t context_dim, Generator& init);
    Tensor forward(const Tensor& x, const Tensor& context = Tensor());  // (B, C, H, W) -> same
    std::string name() const override { return "AttnBlock"; }

    std::shared_ptr<nn::GroupNorm> norm;
    std::shared_ptr<nn::Attention> attn;
    bool cross;  // built with a context_dim
};

// Parameter names follow the PyTorch port of the DDPM code (pesser/pytorch_diffusion,
// later CompVis' ldm/modules/diffusionmodules/model.py): temb.dense.0, conv_in,
// down.0.block.1.conv1, down.1.downsample.conv, mid.attn_1, up.2.block.0.nin_shortcut,
// norm_out, conv_out. Attention uses nn::Attention (to_q, to_k, to_v, to_out) with
// configurable heads instead of DDPM's single-head 1x1 convs. One difference the names
// hide: the port's downsample conv pads (0, 1, 0, 1) (TensorFlow's "SAME"); ours pads 1 on
// every side, as PyTorch's Conv2d(padding=1) and Improved DDPM's code do, so the port's
// weights load here but do not compute the same function.
class UNet : public nn::Module {
public:
    explicit UNet(const UNetConfig& config);

    // What a condition y becomes inside the UNet (condition() fills the field of the mode).
    struct Cond {
        Tensor emb;      // add: (B, temb_dim) added to the time embedding, or undefined
        Tensor context;  // crossattn: (B, Lc, context_dim) for cross-attention, or undefined
        Tensor concat;   // concat: (B, concat_channels, H, W) concatenated to x_t, or undefined
    };
    // eps_theta(x_t, t, y): x (B, C, H, W) float32, t (B) int64 0-based timesteps, cond =
    // condition(y) (a conditional UNet requires it) -> (B, out_channels, H, W)
    Tensor forward(const Tensor& x, const Tensor& t, const Cond& cond = {});
    std::string name() const override { return "UNet"; }

    // y -> Cond, through the conditioner: y (B) int64 labels in [0, num_classes] (class),
    // or (B, L) int64 token ids (text: text_encoder().tokenize(prompts)). Differentiable:
    // in training the conditioner learns with the UNet.
    Cond condition(const Tensor& y);
    // The y that means "no condition", B times: labels num_classes (class), or the
    // tokens of the empty prompt "" (text), on the UNet's device. Classifier-free
    // guidance's eps(x_t, empty).
    Tensor null_condition(int64_t B) const;
    // The text encoder of a cond text UNet (tokenize prompts with it); throws otherwise.
    TextEncoder& text_encoder();

    const UNetConfig& config() const { return config_; }
    Generator& dropout_generator() { return dropout_gen_; }  // its state goes into checkpoints

private:
    struct Level {  // one resolution of the down or up path
        std::vector<std::shared_ptr<ResBlock>> blocks;
        std::vector<std::shared_ptr<AttnBlock>> attns;                      // one per block, or none
        std::vector<std::shared_ptr<nn::SpatialTransformer>> transformers;  // instead of attns in crossattn mode
        std::shared_ptr<nn::Conv2d> resample;                               // downsample.conv / upsample.conv, or null
    };
    // Level L's attention after block j (AttnBlock or SpatialTransformer), or h unchanged.
    Tensor attention(Level& L, size_t j, const Tensor& h, const Cond& cond);
    // (B, k) -> (B, k, H, W): a vector condition as constant planes (concat mode)
    Tensor as_planes(const Tensor& v) const;

    UNetConfig config_;
    Generator dropout_gen_;
    std::shared_ptr<nn::Linear> temb_dense0_, temb_dense1_;
    std::shared_ptr<nn::Conv2d> conv_in_, conv_out_;
    std::shared_ptr<nn::GroupNorm> norm_out_;
    std::vector<Level> down_, up_;  // up_[i] is the up path's level i (resolution H / 2^i)
    std::shared_ptr<ResBlock> mid_block_1_, mid_block_2_;
    std::shared_ptr<AttnBlock> mid_attn_1_;                    // or, in crossattn mode,
    std::shared_ptr<nn::SpatialTransformer> mid_transformer_;  // mid.attn_1 is this one
    // The conditioner (null for what the config does not use).
    std::shared_ptr<nn::Embedding> label_emb_;       // class
    std::shared_ptr<TextEncoder> cond_stage_model_;  // text
    std::shared_ptr<nn::Linear> cond_proj_;          // text, add / concat: pooled -> width
};

}  // namespace td::diffusion
