// nn/norm.h: GroupNorm and LayerNorm modules (gamma = "weight" = 1, beta = "bias" = 0).
#pragma once
#include "nn/module.h"

namespace td::nn {

class GroupNorm : public UnaryModule {
public:
    GroupNorm(int64_t num_groups, int64_t num_channels, float eps = 1e-5f);
    Tensor forward(const Tensor& x) override;  // (N, C, ...) -> same
    Tensor forward_silu(const Tensor& x);      // silu(forward(x)), fused (td::group_norm_silu)
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
