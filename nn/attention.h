// nn/attention.h: multi-head attention, as self-attention or cross-attention.
//
// The layout and names follow the latent-diffusion code's CrossAttention (Rombach et
// al. 2022, sec. 3.3): to_q, to_k, to_v (no bias) and to_out (with bias):
//     Q = x W_Q, K = c W_K, V = c W_V      x: (B, Lq, query_dim) image tokens
//     Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V, per head   c: (B, Lk, context_dim)
// With no context, c = x: self-attention. Queries and keys/values may differ in length
// and width (Lq != Lk, query_dim != context_dim).
//
// An optional key mask hides keys (padding tokens of a text): key_mask (B, Lk) float, 1
// for a key to attend to, 0 for one to ignore (masked_attention below).
#pragma once
#include "nn/linear.h"
#include "nn/module.h"

namespace td::nn {

class Attention : public Module {
public:
    // context_dim = 0: self-attention (context_dim = query_dim)
    Attention(int64_t query_dim, int64_t heads, int64_t dim_head, int64_t context_dim = 0,
              Generator& gen = init_generator());
    // x: (B, Lq, query_dim), context: (B, Lk, context_dim) or undefined -> (B, Lq, query_dim);
    // key_mask: (B, Lk) float 1 / 0, or undefined (every key counts)
    Tensor forward(const Tensor& x, const Tensor& context = Tensor(), const Tensor& key_mask = Tensor());
    std::string name() const override { return "Attention"; }

    // The same computation with the weights passed in (used by forward, and by the
    // PyTorch-fixture test which needs gradients with respect to every weight).
    static Tensor attend(const Tensor& x, const Tensor& context, const Tensor& wq, const Tensor& wk, const Tensor& wv,
                         const Tensor& wo, const Tensor& bo, int64_t heads, const Tensor& key_mask = Tensor());

    std::shared_ptr<Linear> to_q, to_k, to_v, to_out;
    int64_t heads, dim_head;
};

// softmax(Q K^T / sqrt(d) + M) V with M = 0 for the keys key_mask keeps and -1e9 for the
// ones it hides: exp(-1e9 - max) is exactly 0 in float32, so a hidden key gets weight 0
// and no gradient. q: (B, H, Lq, d), k: (B, H, Lk, d), v: (B, H, Lk, dv), key_mask: (B, Lk)
// -> (B, H, Lq, dv). Every row must keep at least one key (a text always has <bos>).
Tensor masked_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_mask);

// (B, L, heads * d) -> (B, heads, L, d): each head attends on its own slice of features.
Tensor split_heads(const Tensor& x, int64_t heads);
// (B, heads, L, d) -> (B, L, heads * d)
Tensor merge_heads(const Tensor& x);

}  // namespace td::nn
