// diffusion/loss_per_timestep.h: the training loss as a function of t.
//
// A DDPM's loss curve averages over t ~ U{1..T}, and hides that the steps are not equally
// hard: near t = 0 the noise is a whisper and eps is hard to tell from the image's own
// detail, near t = T x_0 is all but gone. This measures, on a fixed batch of x_0 and a
// fixed eps, the error of a trained model at chosen timesteps, in three spaces:
//   - its own target (eps, x_0 or v): what training minimised at that t;
//   - eps, and x_0: comparable between models that predict different things
//     (forward_process.h's model_eps and model_x0 convert the output).
// Nothing here trains or draws t at random: the same model gives the same curve.
#pragma once
#include <cstdint>
#include <vector>

#include "diffusion/model_file.h"

namespace td::diffusion {

struct LossAtT {
    int64_t t;          // 0-based timestep (the paper's t + 1)
    double target_mse;  // mean (target - output)^2 in the model's prediction space (L_simple, eq. 14)
    double eps_mse;     // mean (eps - eps_theta)^2
    double x0_mse;      // mean (x_0 - x0_theta)^2
};

// ts: the timesteps to measure; x0: (B, C, H, W) images in the model's space (pixels in
// [-1, 1], or scaled latents); y: a conditional model's condition for each image (or
// undefined: none). One eps ~ N(0, I) drawn from `seed` serves every t, so the curve's
// wiggles are the model's, not the noise's.
std::vector<LossAtT> loss_per_timestep(const LoadedModel& model, const Tensor& x0, const std::vector<int64_t>& ts,
                                       uint64_t seed = 0, const Tensor& y = Tensor());

// n timesteps spread evenly over 0..T-1, both ends included (n >= 2).
std::vector<int64_t> evenly_spaced_timesteps(int64_t T, int64_t n);

}  // namespace td::diffusion
