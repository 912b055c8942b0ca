// tensor/ops/norm_conv.cpp: conv2d(dropout(SiLU(GroupNorm(x)))), the second half of a
// ResBlock (and the first, without dropout), as one recorded op that keeps less memory.
//
// Composed of the three ops, the graph keeps for the backward: x (GroupNorm needs it),
// a = SiLU(GroupNorm(x)) (the convolution's input, for dW), and with dropout the dropped
// a' = a * mask as well. a and a' are as large as x. Here only x and the parameters are
// kept; the backward recomputes a from x (GroupNorm's statistics and one pass over the
// block, far cheaper than the convolution) and the mask from the generator's saved
// state (tensor/ops/misc.cpp), then runs the same backward kernels in the same order:
//     a  = SiLU(GroupNorm(x))          (recomputed; the same kernel, the same bits)
//     a' = a * mask                     (mask = (u > p) / (1 - p), u redrawn)
//     da', dW, db = conv2d backward at a'
//     da = da' * mask
//     dx, dgamma, dbeta = group_norm_silu backward at x
// So the gradients are bit for bit those of the composed ops (tests/test_norm_conv.cpp),
// at the price of one GroupNorm + SiLU forward more per step.
#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td {

Tensor group_norm_silu_conv2d(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, float eps,
                              const Tensor& w, const Tensor& bias, int64_t stride, int64_t padding, float dropout_p,
                              Generator* gen) {
    check(dropout_p == 0.0f || gen != nullptr, "group_norm_silu_conv2d: dropout ", dropout_p, " needs a generator");
    // The forward is the composed ops on detached inputs: they check the arguments and
    // record nothing, and a and a' are freed when this function returns.
    Generator at_draw = gen ? *gen : Generator();  // the mask's (seed, offset)
    Tensor a = group_norm_silu(x.detach(), groups, gamma.detach(), beta.detach(), eps);
    if (dropout_p > 0.0f) a = dropout(a, dropout_p, /*training=*/true, *gen);
    Tensor y = conv2d(a, w.detach(), bias.defined() ? bias.detach() : Tensor(), stride, padding);
    Conv2dShape geo{a.size(0), a.size(1), a.size(2), a.size(3),    w.size(0), w.size(2),
                    w.size(3), stride,    padding,   /*groups=*/1, y.size(2), y.size(3)};

    Tensor xc = x.detach().contiguous(), g = gamma.detach().contiguous(), b = beta.detach().contiguous();
    Tensor wc = w.detach().contiguous();
    bool need_norm = x.requires_grad() || gamma.requires_grad() || beta.requires_grad();
    bool need_dw = w.requires_grad(), need_db = bias.defined() && bias.requires_grad();
    return record("group_norm_silu_conv2d", y, {x, gamma, beta, w, bias},
                  [xc, g, b, wc, groups, eps, geo, dropout_p, at_draw, need_norm, need_dw,
                   need_db](const Tensor& dy) -> std::vector<Tensor> {
                      Device d = xc.device();
                      Backend& be = backend_for(d);
                      int64_t N = xc.size(0);
                      Tensor a = Tensor::empty(xc.shape(), DType::Float32, d);
                      Tensor mean = Tensor::empty({N, groups}, DType::Float32, d),
                             rstd = Tensor::empty({N, groups}, DType::Float32, d);
                      be.group_norm_silu_forward(xc, groups, g, b, eps, a, mean,
                                                 rstd);  // a = SiLU(GroupNorm(x)), again
                      Tensor mask;
                      if (dropout_p > 0.0f) {
                          Generator again = at_draw;
                          mask = dropout_mask(xc.shape(), again, dropout_p, d);
                          a = mul(a, mask);  // a'
                      }
                      Tensor da = need_norm ? Tensor::empty(xc.shape(), DType::Float32, d) : Tensor();
                      Tensor dw = need_dw ? Tensor::empty(wc.shape(), DType::Float32, d) : Tensor();
                      Tensor db = need_db ? Tensor::empty({geo.K}, DType::Float32, d) : Tensor();
                      be.conv2d_backward(a, wc, dy.contiguous(), da, dw, db, geo);
                      a = Tensor();  // a' is not needed any more: free it before the norm's buffers are made
                      if (!need_norm) return {Tensor(), Tensor(), Tensor(), dw, db};
                      if (mask.defined()) da = mul(da, mask);
                      Tensor dx = Tensor::empty(xc.shape(), DType::Float32, d);
                      Tensor dgamma = Tensor::empty(g.shape(), DType::Float32, d),
                             dbeta = Tensor::empty(b.shape(), DType::Float32, d);
                      be.group_norm_silu_backward(da, xc, mean, rstd, g, b, groups, eps, dx, dgamma, dbeta);
                      return {dx, dgamma, dbeta, dw, db};
                  });
}

}  // namespace td
