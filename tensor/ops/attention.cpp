// tensor/ops/attention.cpp: scaled dot-product attention (Vaswani et al. 2017, eq. 1),
// Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V, composed of two batched matmuls and a
// softmax, so its backward is theirs. (A fused, flash-attention-style kernel that never
// stores the (Lq, Lk) score matrix belongs to the CUDA backend.)
#include <cmath>

#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
    check(q.defined() && k.defined() && v.defined() && q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(),
          "attention: q, k, v must have the same rank >= 2");
    check(q.size(-1) == k.size(-1), "attention: q of shape ", shape_str(q.shape()), " and k of shape ",
          shape_str(k.shape()), " differ in the feature dim");
    check(k.size(-2) == v.size(-2), "attention: k of shape ", shape_str(k.shape()), " and v of shape ",
          shape_str(v.shape()), " differ in sequence length");
    float scale = 1.0f / std::sqrt((float)q.size(-1));
    Tensor scores = mul(matmul(q, k.transpose(-1, -2)), scale);  // (..., Lq, Lk)
    Tensor weights = softmax(scores, -1);                        // each query's distribution over keys
    return matmul(weights, v);                                   // (..., Lq, dv)
}

}  // namespace td
