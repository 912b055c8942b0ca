// nn/norm.h: GroupNorm and LayerNorm modules (gamma = "weight" = 1, beta = "bias" = 0).
#pragma once
#include "nn/module.h"
#include "tensor/random.h"

namespace td::nn {

class Conv2d;

class GroupNorm : public UnaryModule {
public:
    GroupNorm(int64_t num_groups, int64_t num_channels, float eps = 1e-5f);
    Tensor forward(const Tensor& x) override;  // (N, C, ...) -> same
    Tensor forward_silu(const Tensor& x);      // silu(forward(x)), fused (td::group_norm_silu)
    // conv(dropout(silu(forward(x)))) as one op (td::group_norm_silu_conv2d): the conv's input
    // is recomputed in the backward, not kept. dropout_p > 0 needs gen.
    Tensor forward_silu_conv(const Tensor& x, Conv2d& conv, float dropout_p = 0.0f, Generator* gen = nullptr);
    std::string name() const override { return "GroupNorm"; }
    Tensor weight, bias;
    int64_t groups;
    float eps;
};

class LayerNorm : public UnaryModule {
public:
    explicit LayerNorm(int64_t dim, float eps = 1e-5f, bool affine = true);
    Tensor forward(const Tensor& x) override;  // (..., dim) -> same
    std::string name() const override { return "LayerNorm"; }
    Tensor weight, bias;  // undefined without affine
    int64_t dim;
    float eps;
};

}  // namespace td::nn
