// tensor/ops/loss.cpp: the two losses, composed from ops whose backward is known.
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td {

// Cross-entropy = mean_n -log softmax(logits_n)[target_n]; logits (N, C), target int64 (N).
Tensor cross_entropy(const Tensor& logits, const Tensor& target) {
    check(logits.defined() && logits.dim() == 2, "cross_entropy: logits must be (N, C), got ",
          logits.defined() ? shape_str(logits.shape()) : "undefined");
    check(target.defined() && target.dtype() == DType::Int64 && target.shape() == Shape{logits.size(0)},
          "cross_entropy: target must be int64 of shape [", logits.size(0), "] for logits ", logits.shape());
    Tensor logp = log_softmax(logits, 1);                  // (N, C)
    Tensor picked = gather(logp, 1, target.unsqueeze(1));  // (N, 1): log p of the true class
    return neg(mean(picked));
}

// MSE = mean((a - b)^2), the L2 loss of DDPM's L_simple.
Tensor mse_loss(const Tensor& a, const Tensor& b) {
    check(a.defined() && b.defined() && a.shape() == b.shape(), "mse_loss: shapes ",
          a.defined() ? shape_str(a.shape()) : "undefined", " and ", b.defined() ? shape_str(b.shape()) : "undefined",
          " differ");
    Tensor d = sub(a, b);
    return mean(mul(d, d));
}

}  // namespace td
