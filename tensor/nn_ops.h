// tensor/nn_ops.h: the differentiable ops that neural-network layers are made of.
// Like tensor/ops.h, each op checks its arguments, calls a backend kernel and records
// its backward next to its forward, in tensor/ops/<family>.cpp:
//   conv.cpp      conv2d, conv_transpose2d, avg_pool2d, upsample_nearest2d
//   norm.cpp      group_norm, group_norm_silu, layer_norm
//   norm_conv.cpp group_norm_silu_conv2d (a ResBlock's norm, SiLU, dropout and conv as one op)
//   softmax.cpp   softmax, log_softmax
//   loss.cpp      cross_entropy, mse_loss
//   attention.cpp scaled_dot_product_attention
//   misc.cpp      dropout, embedding
// The nn/ modules (nn/*.h) hold the weights and call these.
#pragma once
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace td {

// ---- convolution family ---------------------------------------------------------------
// x: (N, C, H, W), w: (K, C / groups, R, S), bias: (K) or undefined -> (N, K, OH, OW)
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride = 1, int64_t padding = 0,
              int64_t groups = 1);
// x: (N, C, H, W), w: (C, K / groups, R, S) (PyTorch's layout), bias: (K) or undefined
// -> (N, K, (H - 1) stride - 2 padding + R + output_padding, ...)
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride = 1, int64_t padding = 0,
                        int64_t output_padding = 0, int64_t groups = 1);
// mean over k x k windows, stride k: (N, C, H, W) -> (N, C, H / k, W / k)
Tensor avg_pool2d(const Tensor& x, int64_t k);
// nearest neighbour, scale s: (N, C, H, W) -> (N, C, H s, W s)
Tensor upsample_nearest2d(const Tensor& x, int64_t s);

// ---- normalisation ------------------------------------------------------------------------
// GroupNorm (Wu & He 2018): x (N, C, *), gamma, beta: (C)
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, float eps = 1e-5f);
// silu(group_norm(x, ...)) as one op (one pass over memory each way; GroupNorm's output is not kept)
Tensor group_norm_silu(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, float eps = 1e-5f);
// conv2d(dropout(silu(group_norm(x)))) as one op, with the same numbers; the convolution's
// input is recomputed in the backward instead of kept. w (K, C, R, S), groups 1; no dropout
// when dropout_p is 0 (gen may be null then)
Tensor group_norm_silu_conv2d(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, float eps,
                              const Tensor& w, const Tensor& bias, int64_t stride = 1, int64_t padding = 0,
                              float dropout_p = 0.0f, Generator* gen = nullptr);
// LayerNorm (Ba et al. 2016) over the last dims of shape gamma.shape(); gamma, beta may be undefined
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& gamma, const Tensor& beta,
                  float eps = 1e-5f);

// ---- softmax ------------------------------------------------------------------------------
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- losses -------------------------------------------------------------------------------
// mean over the batch of -log softmax(logits)[target]; logits (N, C), target int64 (N)
Tensor cross_entropy(const Tensor& logits, const Tensor& target);
// mean((a - b)^2)
Tensor mse_loss(const Tensor& a, const Tensor& b);

// ---- attention ----------------------------------------------------------------------------
// softmax(q k^T / sqrt(d)) v; q: (..., Lq, d), k: (..., Lk, d), v: (..., Lk, dv), the same
// leading dims -> (..., Lq, dv); one recorded op with a hand-written backward (attention.cpp)
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v);

// ---- misc ---------------------------------------------------------------------------------
// Inverted dropout: zero each element with probability p, scale the rest by 1 / (1 - p).
// The identity when !training or p == 0.
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen);
// dropout's mask (u > p) / (1 - p), u ~ U[0, 1) drawn from gen: the same for the same (seed, offset)
Tensor dropout_mask(const Shape& shape, Generator& gen, float p, Device device);
// weight (num, dim), indices int64 of any shape -> (*indices.shape, dim)
Tensor embedding(const Tensor& weight, const Tensor& indices);

}  // namespace td
