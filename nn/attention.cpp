// nn/attention.cpp
#include "nn/attention.h"

#include <cmath>

#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td::nn {

Tensor split_heads(const Tensor& x, int64_t heads) {
    int64_t B = x.size(0), L = x.size(1), D = x.size(2);
    check(D % heads == 0, "split_heads: ", D, " features do not split into ", heads, " heads");
    return x.reshape({B, L, heads, D / heads}).permute({0, 2, 1, 3});
}

Tensor merge_heads(const Tensor& x) {
    int64_t B = x.size(0), H = x.size(1), L = x.size(2), d = x.size(3);
    return x.permute({0, 2, 1, 3}).reshape({B, L, H * d});
}

Tensor masked_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_mask) {
    int64_t B = q.size(0), Lk = k.size(2);
    check(key_mask.dim() == 2 && key_mask.size(0) == B && key_mask.size(1) == Lk, "masked_attention: key_mask ",
          key_mask.shape(), " must be (B, Lk) = [", B, ", ", Lk, "]");
    Tensor M = (key_mask.to(DType::Float32) - 1.0f) * 1e9f;  // (B, Lk): 0 keep, -1e9 hide
    Tensor scores = matmul(q, k.transpose(-1, -2)) * (1.0f / std::sqrt((float)q.size(-1)));  // (B, H, Lq, Lk)
    scores = scores + M.reshape({B, 1, 1, Lk});  // the same mask for every head and query
    return matmul(softmax(scores, -1), v);       // (B, H, Lq, dv)
}

Attention::Attention(int64_t query_dim, int64_t heads_, int64_t dim_head_, int64_t context_dim, Generator& gen)
    : heads(heads_), dim_head(dim_head_) {
    check(query_dim > 0 && heads > 0 && dim_head > 0, "Attention: sizes must be positive");
    if (context_dim == 0) context_dim = query_dim;
    int64_t inner = heads * dim_head;
    to_q = register_module("to_q", std::make_shared<Linear>(query_dim, inner, false, gen));
    to_k = register_module("to_k", std::make_shared<Linear>(context_dim, inner, false, gen));
    to_v = register_module("to_v", std::make_shared<Linear>(context_dim, inner, false, gen));
    to_out = register_module("to_out", std::make_shared<Linear>(inner, query_dim, true, gen));
}

Tensor Attention::attend(const Tensor& x, const Tensor& context, const Tensor& wq, const Tensor& wk, const Tensor& wv,
                         const Tensor& wo, const Tensor& bo, int64_t heads, const Tensor& key_mask) {
    const Tensor& c = context.defined() ? context : x;
    check(x.dim() == 3 && c.dim() == 3 && x.size(0) == c.size(0), "Attention: x ", x.shape(), " and context ",
          c.shape(), " must be (B, L, dim) with the same B");
    Tensor q = split_heads(matmul(x, wq.transpose(0, 1)), heads);  // (B, H, Lq, d)
    Tensor k = split_heads(matmul(c, wk.transpose(0, 1)), heads);  // (B, H, Lk, d)
    Tensor v = split_heads(matmul(c, wv.transpose(0, 1)), heads);  // (B, H, Lk, d)
    Tensor a = key_mask.defined() ? masked_attention(q, k, v, key_mask) : scaled_dot_product_attention(q, k, v);
    Tensor o = merge_heads(a);                  // (B, Lq, H d)
    return matmul(o, wo.transpose(0, 1)) + bo;  // (B, Lq, query_dim)
}

Tensor Attention::forward(const Tensor& x, const Tensor& context, const Tensor& key_mask) {
    return attend(x, context, to_q->weight, to_k->weight, to_v->weight, to_out->weight, to_out->bias, heads, key_mask);
}

}  // namespace td::nn
