// nn/transformer.h: the spatial transformer of latent diffusion (Rombach et al. 2022,
// sec. 3.3; ldm/modules/attention.py), the block through which a condition y enters the
// UNet by cross-attention:
//
//   SpatialTransformer, x (B, C, H, W):
//     h = proj_in(norm(x))                  GroupNorm, then a 1x1 conv C -> inner
//     h: (B, inner, H, W) -> (B, HW, inner)  one token per pixel
//     h = transformer_blocks.k(h, context)  BasicTransformerBlock, depth times
//     h -> (B, inner, H, W); out = x + proj_out(h)   1x1 conv inner -> C, zero at init
//
//   BasicTransformerBlock, h (B, L, dim), context (B, Lc, context_dim):
//     h = h + attn1(norm1(h))            self-attention over the pixels
//     h = h + attn2(norm2(h), context)   cross-attention: Q from the pixels, K and V from
//                                        the context tau_theta(y): softmax(Q K^T / sqrt(d)) V
//     h = h + ff(norm3(h))               GEGLU feed-forward (nn/feedforward.h)
//   with LayerNorms (pre-LN: each sub-layer sees a normalised input, the residual stream
//   does not).
#pragma once
#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/feedforward.h"
#include "nn/norm.h"

namespace td::nn {

// Names as in LDM: norm, proj_in, transformer_blocks.0.{norm1,attn1,norm2,attn2,norm3,ff},
// proj_out. One difference: LDM's attention has to_out.0 (a Linear inside a Sequential
// with Dropout); nn::Attention's is to_out. LDM also has dropout inside the block; ours
// has none (the UNet's dropout lives in its ResBlocks).
class BasicTransformerBlock : public Module {
public:
    // context_dim = 0: attn2 attends to h itself (LDM's behaviour without a context)
    BasicTransformerBlock(int64_t dim, int64_t heads, int64_t dim_head, int64_t context_dim,
                          Generator& gen = init_generator());
    // h: (B, L, dim), context: (B, Lc, context_dim) or undefined -> (B, L, dim)
    Tensor forward(const Tensor& h, const Tensor& context = Tensor());
    std::string name() const override { return "BasicTransformerBlock"; }

    std::shared_ptr<LayerNorm> norm1, norm2, norm3;
    std::shared_ptr<Attention> attn1, attn2;
    std::shared_ptr<FeedForward> ff;
};

class SpatialTransformer : public Module {
public:
    // inner = heads * dim_head; groups: the GroupNorm's; depth: transformer blocks
    SpatialTransformer(int64_t channels, int64_t heads, int64_t dim_head, int64_t context_dim, int64_t groups,
                       Generator& gen = init_generator(), int64_t depth = 1);
    // x: (B, C, H, W), context: (B, Lc, context_dim) -> (B, C, H, W)
    Tensor forward(const Tensor& x, const Tensor& context);
    std::string name() const override { return "SpatialTransformer"; }

    std::shared_ptr<GroupNorm> norm;
    std::shared_ptr<Conv2d> proj_in, proj_out;
    std::vector<std::shared_ptr<BasicTransformerBlock>> transformer_blocks;
    int64_t context_dim;
};

}  // namespace td::nn
