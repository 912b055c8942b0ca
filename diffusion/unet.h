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
//
// Parameter names follow the PyTorch port of the DDPM code (pesser/pytorch_diffusion,
// later CompVis' ldm/modules/diffusionmodules/model.py): temb.dense.0, conv_in,
// down.0.block.1.conv1, down.1.downsample.conv, mid.attn_1, up.2.block.0.nin_shortcut,
// norm_out, conv_out. Attention uses nn::Attention (to_q, to_k, to_v, to_out) with
// configurable heads instead of DDPM's single-head 1x1 convs. One difference the names
// hide: the port's downsample conv pads (0, 1, 0, 1) (TensorFlow's "SAME"); ours pads 1 on
// every side, as PyTorch's Conv2d(padding=1) and Improved DDPM's code do, so the port's
// weights load here but do not compute the same function.
//
// The conditioning slot (used by latent diffusion, issue 5): UNet::Cond carries an
// embedding added to the time embedding (a class label's, say) and a context sequence
// that attention blocks built with context_dim > 0 attend to (cross-attention).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "tensor/random.h"

namespace td::diffusion {

struct UNetConfig {
    int64_t in_channels = 1;     // image channels (1 for MNIST, 3 for CIFAR-10, latent channels for LDM)
    int64_t out_channels = 0;    // 0: same as in_channels
    int64_t image_size = 28;     // H = W of the input (attn_res is stated in pixels of this grid)
    int64_t ch = 32;             // base width
    std::vector<int64_t> mults = {1, 2, 2};  // width of level i = ch * mults[i]
    int64_t num_res_blocks = 2;
    std::vector<int64_t> attn_res = {7};     // resolutions (H) that get self-attention
    int64_t heads = 1;
    float dropout = 0.1f;
    int64_t groups = 8;          // GroupNorm groups; must divide every block's width
    int64_t context_dim = 0;     // > 0: attention blocks also cross-attend to Cond::context
    uint64_t seed = 0;           // initial weights and the dropout masks

    int64_t temb_dim() const { return 4 * ch; }
    // Throws td::Error naming the bad field (sizes that do not divide, an image size
    // that cannot be halved len(mults) - 1 times, ...).
    void validate() const;
    std::string describe() const;  // "ch 32, mults 1,2,2, 2 res blocks, attention at 7, ..."
};

// ResBlock (DDPM's ResnetBlock): h = conv1(SiLU(norm1(x))) + temb_proj(SiLU(temb)),
// h = conv2(dropout(SiLU(norm2(h)))), out = shortcut(x) + h, the shortcut a 1x1 conv
// (nin_shortcut) when the width changes.
class ResBlock : public nn::Module {
public:
    ResBlock(int64_t in, int64_t out, int64_t temb_dim, int64_t groups, float dropout, Generator* dropout_gen,
             Generator& init);
    Tensor forward(const Tensor& x, const Tensor& temb);  // x (B, in, H, W), temb (B, temb_dim) -> (B, out, H, W)
    std::string name() const override { return "ResBlock"; }

    std::shared_ptr<nn::GroupNorm> norm1, norm2;
    std::shared_ptr<nn::Conv2d> conv1, conv2, nin_shortcut;  // nin_shortcut null when in == out
    std::shared_ptr<nn::Linear> temb_proj;
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

class UNet : public nn::Module {
public:
    explicit UNet(const UNetConfig& config);

    struct Cond {
        Tensor emb;      // (B, temb_dim) added to the time embedding, or undefined
        Tensor context;  // (B, L, context_dim) for cross-attention, or undefined
    };
    // eps_theta(x_t, t): x (B, C, H, W) float32, t (B) int64 0-based timesteps -> (B, out_channels, H, W)
    Tensor forward(const Tensor& x, const Tensor& t, const Cond& cond = {});
    std::string name() const override { return "UNet"; }

    const UNetConfig& config() const { return config_; }
    Generator& dropout_generator() { return dropout_gen_; }  // its state goes into checkpoints

private:
    // Plain containers that give the state dict its PyTorch names (down.0.block.1...).
    struct Container : nn::Module {
        template <typename M>
        std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> m) { return register_module(name, m); }
        std::string name() const override { return "Container"; }
    };
    struct Level {  // one resolution of the down or up path
        std::vector<std::shared_ptr<ResBlock>> blocks;
        std::vector<std::shared_ptr<AttnBlock>> attns;  // one per block, or none
        std::shared_ptr<nn::Conv2d> resample;            // downsample.conv / upsample.conv, or null
    };

    UNetConfig config_;
    Generator dropout_gen_;
    std::shared_ptr<nn::Linear> temb_dense0_, temb_dense1_;
    std::shared_ptr<nn::Conv2d> conv_in_, conv_out_;
    std::shared_ptr<nn::GroupNorm> norm_out_;
    std::vector<Level> down_, up_;  // up_[i] is the up path's level i (resolution H / 2^i)
    std::shared_ptr<ResBlock> mid_block_1_, mid_block_2_;
    std::shared_ptr<AttnBlock> mid_attn_1_;
};

}  // namespace td::diffusion
