// tensor/ops/norm.cpp: GroupNorm and LayerNorm. The fused kernels (tensor/cpu/norm.cpp)
// save mean and rstd in the forward; the backward closure hands them back.
#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td {

// What group_norm and group_norm_silu refuse, in messages that name the op and the shapes.
static void check_group_norm_args(const char* op, const Tensor& x, int64_t groups, const Tensor& gamma,
                                  const Tensor& beta) {
    check(x.defined() && x.dtype() == DType::Float32, op, ": expected a float32 input");
    check(x.dim() >= 2, op, ": input of shape ", x.shape(), " needs (N, C, ...)");
    int64_t C = x.size(1);
    // (an empty input has no statistics; the kernels divide by the group size)
    check(x.numel() > 0, op, ": input of shape ", x.shape(), " is empty");
    check(groups > 0 && C % groups == 0, op, ": ", groups, " groups do not divide ", C, " channels (input ", x.shape(),
          ")");
    check(gamma.defined() && beta.defined() && gamma.shape() == Shape{C} && beta.shape() == Shape{C}, op,
          ": gamma and beta must have shape [", C, "] for input ", x.shape());
}

// GroupNorm (Wu & He 2018): y = (x - mu_g) / sqrt(var_g + eps) * gamma + beta, the
// statistics taken over each group of C / G channels and all positions of a sample.
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, float eps) {
    check_group_norm_args("group_norm", x, groups, gamma, beta);
    int64_t N = x.size(0);
    Tensor xc = x.detach().contiguous();
    Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
    Tensor mean = Tensor::empty({N, groups}, DType::Float32, x.device());  // saved for backward
    Tensor rstd = Tensor::empty({N, groups}, DType::Float32, x.device());  // 1 / sqrt(var + eps)
    Backend& be = backend_for(x.device());
    be.group_norm_forward(xc, groups, gamma.detach().contiguous(), beta.detach().contiguous(), eps, y, mean, rstd);
    return record("group_norm", y, {x, gamma, beta},
                  [x, xc, gamma, beta, mean, rstd, groups](const Tensor& dy) -> std::vector<Tensor> {
                      Tensor dx = x.requires_grad() ? Tensor::empty(x.shape(), DType::Float32, x.device()) : Tensor();
                      Tensor dgamma = Tensor::empty(gamma.shape(), DType::Float32, x.device());
                      Tensor dbeta = Tensor::empty(beta.shape(), DType::Float32, x.device());
                      backend_for(x.device())
                          .group_norm_backward(dy.contiguous(), xc, mean, rstd, gamma.detach().contiguous(), groups, dx,
                                               dgamma, dbeta);
                      return {dx, gamma.requires_grad() ? dgamma : Tensor(), beta.requires_grad() ? dbeta : Tensor()};
                  });
}

// SiLU(GroupNorm(x)), the pair a ResBlock applies before each convolution, as one op:
// the same numbers as silu(group_norm(x, ...)) (tests/test_norm_silu.cpp holds them equal),
// without writing GroupNorm's output to memory or keeping it for the backward.
Tensor group_norm_silu(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, float eps) {
    check_group_norm_args("group_norm_silu", x, groups, gamma, beta);
    int64_t N = x.size(0);
    Tensor xc = x.detach().contiguous();
    Tensor g = gamma.detach().contiguous(), b = beta.detach().contiguous();
    Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
    Tensor mean = Tensor::empty({N, groups}, DType::Float32, x.device());
    Tensor rstd = Tensor::empty({N, groups}, DType::Float32, x.device());
    backend_for(x.device()).group_norm_silu_forward(xc, groups, g, b, eps, y, mean, rstd);
    return record("group_norm_silu", y, {x, gamma, beta},
                  [x, xc, g, b, gamma, beta, mean, rstd, groups, eps](const Tensor& dy) -> std::vector<Tensor> {
                      Tensor dx = x.requires_grad() ? Tensor::empty(x.shape(), DType::Float32, x.device()) : Tensor();
                      Tensor dgamma = Tensor::empty(gamma.shape(), DType::Float32, x.device());
                      Tensor dbeta = Tensor::empty(beta.shape(), DType::Float32, x.device());
                      backend_for(x.device())
                          .group_norm_silu_backward(dy.contiguous(), xc, mean, rstd, g, b, groups, eps, dx, dgamma,
                                                    dbeta);
                      return {dx, gamma.requires_grad() ? dgamma : Tensor(), beta.requires_grad() ? dbeta : Tensor()};
                  });
}

// LayerNorm (Ba, Kiros & Hinton 2016): the same normalisation over the trailing dims
// `normalized_shape` of each position (a token's feature vector).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& gamma, const Tensor& beta, float eps) {
    check(x.defined() && x.dtype() == DType::Float32, "layer_norm: expected a float32 input");
    check(x.numel() > 0, "layer_norm: input of shape ", x.shape(), " is empty");
    int64_t k = (int64_t)normalized_shape.size();
    check(k >= 1 && k <= x.dim() && Shape(x.shape().end() - k, x.shape().end()) == normalized_shape,
          "layer_norm: normalized_shape ", normalized_shape, " is not the trailing shape of input ", x.shape());
    check(!gamma.defined() || gamma.shape() == normalized_shape, "layer_norm: gamma of shape ",
          gamma.defined() ? shape_str(gamma.shape()) : "", " should be ", normalized_shape);
    check(!beta.defined() || beta.shape() == normalized_shape, "layer_norm: beta of shape ",
          beta.defined() ? shape_str(beta.shape()) : "", " should be ", normalized_shape);
    int64_t D = numel_of(normalized_shape), M = x.numel() / std::max<int64_t>(D, 1);
    Tensor xc = x.detach().contiguous();
    Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
    Tensor mean = Tensor::empty({M}, DType::Float32, x.device());
    Tensor rstd = Tensor::empty({M}, DType::Float32, x.device());
    Tensor g = gamma.defined() ? gamma.detach().contiguous() : Tensor();
    Tensor b = beta.defined() ? beta.detach().contiguous() : Tensor();
    backend_for(x.device()).layer_norm_forward(xc, g, b, eps, y, mean, rstd);
    return record(
        "layer_norm", y, {x, gamma, beta},
        [x, xc, g, gamma, beta, mean, rstd](const Tensor& dy) -> std::vector<Tensor> {
            Tensor dx = x.requires_grad() ? Tensor::empty(x.shape(), DType::Float32, x.device()) : Tensor();
            Tensor dgamma = gamma.defined() ? Tensor::empty(gamma.shape(), DType::Float32, x.device()) : Tensor();
            Tensor dbeta = beta.defined() ? Tensor::empty(beta.shape(), DType::Float32, x.device()) : Tensor();
            backend_for(x.device()).layer_norm_backward(dy.contiguous(), xc, mean, rstd, g, dx, dgamma, dbeta);
            return {dx, dgamma, dbeta};
        });
}

}  // namespace td
