// nn/norm.cpp
#include "nn/norm.h"

#include "nn/conv.h"
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td::nn {

GroupNorm::GroupNorm(int64_t num_groups, int64_t num_channels, float eps_) : groups(num_groups), eps(eps_) {
    check(num_groups > 0 && num_channels % num_groups == 0, "GroupNorm: ", num_groups, " groups do not divide ",
          num_channels, " channels");
    weight = register_parameter("weight", ones({num_channels}));
    bias = register_parameter("bias", zeros({num_channels}));
}

Tensor GroupNorm::forward(const Tensor& x) { return group_norm(x, groups, weight, bias, eps); }
Tensor GroupNorm::forward_silu(const Tensor& x) { return group_norm_silu(x, groups, weight, bias, eps); }
Tensor GroupNorm::forward_silu_conv(const Tensor& x, Conv2d& conv, float dropout_p, Generator* gen) {
    check(conv.groups == 1, "GroupNorm::forward_silu_conv: the conv has ", conv.groups, " groups; only 1 is fused");
    return group_norm_silu_conv2d(x, groups, weight, bias, eps, conv.weight, conv.bias, conv.stride, conv.padding,
                                  dropout_p, gen);
}

LayerNorm::LayerNorm(int64_t dim_, float eps_, bool affine) : dim(dim_), eps(eps_) {
    check(dim > 0, "LayerNorm: dim must be positive, got ", dim);
    if (affine) {
        weight = register_parameter("weight", ones({dim}));
        bias = register_parameter("bias", zeros({dim}));
    }
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, {dim}, weight, bias, eps); }

}  // namespace td::nn
