// diffusion/guidance.h: classifier-free guidance (Ho & Salimans 2022), its sampling half.
//
// One network, trained with its condition dropped some of the time (the null label, or
// the empty prompt: UNet::null_condition), predicts both eps(x_t, c) and eps(x_t, empty).
// Sampling steps along their mixture:
//
//     eps_tilde = eps(x_t, empty) + w (eps(x_t, c) - eps(x_t, empty))
//
// This is the form of the LDM and Stable Diffusion code, with their scale s = w. The
// paper writes eps_tilde = (1 + w') eps(x_t, c) - w' eps(x_t, empty): the same with
// w = 1 + w'. So here w = 0 is the unconditional model, w = 1 the plain conditional one,
// and w > 1 pushes away from the unconditional prediction (the sign that matters:
// MINUS the unconditional one, times w - 1).
//
// For a model that predicts x_0 or v instead of eps, the outputs are combined the same
// way (as LDM does). That is exact, not an approximation: at a fixed x_t and t, eps is an
// affine function of x_0 (and of v), and the weights (1 - w) and w sum to 1, so mixing
// the outputs and then converting to eps gives the same eps_tilde as converting first.
#pragma once
#include <memory>

#include "diffusion/sampler.h"
#include "diffusion/unet.h"

namespace td::diffusion {

// eps_uncond + w (eps_cond - eps_uncond); both (B, ...) of the same shape.
Tensor cfg_combine(const Tensor& eps_uncond, const Tensor& eps_cond, float w);

// A Denoiser (sampler.h) for a conditional UNet: y is what the samples are asked for
// ((B) labels or (B, L) token ids; the sampler's x_t must have the same B). Each call runs
// ONE forward on a batch of 2B (x_t twice; y, then the null condition) and combines
// the halves with cfg_combine. w == 1 (or 0) needs one half only: a single forward of
// B on y (or on the null condition). The condition is encoded once, here (tau_theta(y)
// does not depend on x_t or t), without gradients; `net` must outlive the Denoiser.
Denoiser guided_denoiser(UNet& net, const Tensor& y, float w);

// Autoguidance (Karras et al. 2024, "Guiding a Diffusion Model with a Bad Version of
// Itself", eq. 2): the same mixture, with the unconditional prediction replaced by that of a
// weaker model, the guide:
//
//     D_tilde(x_t) = D_guide(x_t) + w (D(x_t) - D_guide(x_t))
//
// The guide is the model itself earlier in its training (`train ddpm --guide-at`): it makes
// the same errors as the model, only larger, so stepping away from it along their
// difference undoes part of the model's own. No labels are needed: it guides an
// unconditional model. Two forwards per call (two networks); w = 1 is the model alone.
Denoiser autoguided_denoiser(std::shared_ptr<UNet> net, std::shared_ptr<UNet> guide, float w);

}  // namespace td::diffusion
