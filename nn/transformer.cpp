// nn/transformer.cpp: see nn/transformer.h for the picture.
#include "nn/transformer.h"

#include "autograd/node.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::nn {

BasicTransformerBlock::BasicTransformerBlock(int64_t dim, int64_t heads, int64_t dim_head, int64_t context_dim,
                                             Generator& gen) {
    norm1 = register_module("norm1", std::make_shared<LayerNorm>(dim));
    attn1 = register_module("attn1", std::make_shared<Attention>(dim, heads, dim_head, 0, gen));
    norm2 = register_module("norm2", std::make_shared<LayerNorm>(dim));
    attn2 = register_module("attn2", std::make_shared<Attention>(dim, heads, dim_head, context_dim, gen));
    norm3 = register_module("norm3", std::make_shared<LayerNorm>(dim));
    ff = register_module("ff", std::make_shared<FeedForward>(dim, 4, true, gen));
}

Tensor BasicTransformerBlock::forward(const Tensor& h_in, const Tensor& context) {
    Tensor h = h_in + attn1->forward(norm1->forward(h_in));  // every pixel looks at every pixel
    h = h + attn2->forward(norm2->forward(h), context);      // every pixel looks at the condition (LDM sec. 3.3)
    return h + ff->forward(norm3->forward(h));               // (B, L, dim)
}

SpatialTransformer::SpatialTransformer(int64_t channels, int64_t heads, int64_t dim_head, int64_t context_dim_,
                                       int64_t groups, Generator& gen, int64_t depth)
    : context_dim(context_dim_) {
    check(depth >= 1, "SpatialTransformer: depth must be >= 1, got ", depth);
    int64_t inner = heads * dim_head;
    norm = register_module("norm", std::make_shared<GroupNorm>(groups, channels));
    proj_in = register_module("proj_in", std::make_shared<Conv2d>(channels, inner, 1, 1, 0, 1, true, gen));
    auto blocks = register_module("transformer_blocks", std::make_shared<ModuleList>());
    for (int64_t k = 0; k < depth; ++k)
        transformer_blocks.push_back(
            blocks->push_back(std::make_shared<BasicTransformerBlock>(inner, heads, dim_head, context_dim, gen)));
    proj_out = register_module("proj_out", std::make_shared<Conv2d>(inner, channels, 1, 1, 0, 1, true, gen));
    // LDM's zero_module: the block starts as the identity (out = x), like the UNet's
    // ResBlocks, so a fresh conditional UNet computes what an unconditional one would.
    NoGradGuard no_grad;
    proj_out->weight.fill_(0.0f);
    proj_out->bias.fill_(0.0f);
}

Tensor SpatialTransformer::forward(const Tensor& x, const Tensor& context) {
    check(x.dim() == 4, "SpatialTransformer: x must be (B, C, H, W), got ", x.shape());
    check(context_dim == 0 || (context.defined() && context.dim() == 3 && context.size(0) == x.size(0) &&
                               context.size(2) == context_dim),
          "SpatialTransformer: needs a context (B, Lc, ", context_dim, ") with B = ", x.size(0), ", got ",
          context.defined() ? shape_str(context.shape()) : "none");
    int64_t B = x.size(0), H = x.size(2), W = x.size(3);
    Tensor h = proj_in->forward(norm->forward(x));  // (B, inner, H, W)
    int64_t inner = h.size(1);
    h = h.reshape({B, inner, H * W}).permute({0, 2, 1});  // (B, HW, inner): one token per pixel
    for (auto& block : transformer_blocks) h = block->forward(h, context);
    h = h.permute({0, 2, 1}).reshape({B, inner, H, W});  // back to a feature map
    return x + proj_out->forward(h);
}

}  // namespace td::nn
