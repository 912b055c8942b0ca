// diffusion/guidance.cpp: see guidance.h.
#include "diffusion/guidance.h"

#include "autograd/node.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::diffusion {

// BEGIN HIDE cfg
// STUB: // Ho & Salimans 2022, eq. 6 in LDM's form (the assignment cfg)
// Ho & Salimans 2022, eq. 6 in LDM's form: eps_tilde = eps_u + w (eps_c - eps_u)
// END HIDE cfg
Tensor cfg_combine(const Tensor& eps_uncond, const Tensor& eps_cond, float w) {
    check(eps_uncond.shape() == eps_cond.shape(), "cfg_combine: eps_uncond ", eps_uncond.shape(), " and eps_cond ",
          eps_cond.shape(), " differ in shape");
    // BEGIN SOLUTION cfg: eps_tilde from the two predictions (mind the sign: away from eps_uncond)
    // STUB: (void)w;
    // STUB: fail("cfg_combine: not implemented yet (assignment cfg)");
    return eps_uncond + (eps_cond - eps_uncond) * w;
    // END SOLUTION cfg
}

Denoiser guided_denoiser(UNet& net, const Tensor& y, float w) {
    check(net.config().cond != Conditioning::None,
          "guided_denoiser: the UNet is unconditional (cond none); "
          "sample it with a plain denoiser");
    check(y.defined() && y.dim() >= 1 && y.size(0) > 0, "guided_denoiser: y must hold one condition per sample");
    int64_t B = y.size(0);
    NoGradGuard no_grad;
    auto check_batch = [B](const Tensor& x_t) {
        check(x_t.size(0) == B, "guided_denoiser: x_t has ", x_t.size(0), " samples but y has ", B, " conditions");
    };
    if (w == 1.0f || w == 0.0f) {  // one half of the mixture only: no wasted batch
        UNet::Cond c = net.condition(w == 1.0f ? y : net.null_condition(B));
        return [&net, c, check_batch](const Tensor& x_t, const Tensor& t) {
            check_batch(x_t);
            return net.forward(x_t, t, c);
        };
    }
    // Rows [0, B): the condition y; rows [B, 2B): the null condition.
    UNet::Cond c2 = net.condition(cat({y, net.null_condition(B)}, 0));
    return [&net, c2, B, w, check_batch](const Tensor& x_t, const Tensor& t) {
        check_batch(x_t);
        Tensor out = net.forward(cat({x_t, x_t}, 0), cat({t, t}, 0), c2);  // (2B, C, H, W)
        return cfg_combine(out.narrow(0, B, B), out.narrow(0, 0, B), w);
    };
}

Denoiser autoguided_denoiser(std::shared_ptr<UNet> net, std::shared_ptr<UNet> guide, float w) {
    check(net->config().cond == Conditioning::None && guide->config().cond == Conditioning::None,
          "autoguided_denoiser: the model and its guide must be unconditional");
    if (w == 1.0f) return [net](const Tensor& x_t, const Tensor& t) { return net->forward(x_t, t); };
    return [net, guide, w](const Tensor& x_t, const Tensor& t) {
        return cfg_combine(guide->forward(x_t, t), net->forward(x_t, t), w);
    };
}

}  // namespace td::diffusion
