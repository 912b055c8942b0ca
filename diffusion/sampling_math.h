// diffusion/sampling_math.h: one reverse step x_t -> x_{t-1} (or x_t -> x_{t'}), math
// only: the caller runs the model and passes its eps prediction in.
//
// Timesteps are 0-based scalars here (code t = 0..T-1 is the paper's 1..T, see
// diffusion/schedule.h); one t for the whole batch, as in every sampling loop. Noise
// z is passed in explicitly (a tensor shaped like x_t) so a step is a pure function;
// the Generator overloads draw it. At the last step (t = 0, i.e. paper t = 1) z = 0
// and z may be left undefined.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "diffusion/schedule.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace td::diffusion {

// Algorithm 2's sigma_t^2: beta_t ("fixed large") or beta_tilde_t ("fixed small", eq. 7).
enum class Variance { Beta, BetaTilde };
Variance parse_variance(const std::string& name);  // "beta" / "fixedlarge", "beta_tilde" / "fixedsmall"
// sigma_t^2 for the chosen variance; 0 at t = 0 (z = 0 at the last step).
double ddpm_sigma2(const Schedule& s, int64_t t, Variance v);

// Eq. 4 solved for x_0, with one t for the whole batch:
//   x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)
// The predicted x_0 of both loops (DDPM's clipped form, DDIM eq. 12). (forward_process.h
// has the same equation for a t per sample, as training draws them.)
Tensor predict_x0_from_eps(const Schedule& s, const Tensor& xt, int64_t t, const Tensor& eps);

// Which ancestral step. ClippedX0 is the DEFAULT (the DDPM reference code's and
// diffusers' form): x_0 = predict_x0_from_eps, clipped to [-1, 1], then the posterior
// mean of eq. 7, plus sigma_t z. Algorithm2 is the paper's line 4 literally. Without
// clipping the two are the same formula.
enum class DdpmForm { ClippedX0, Algorithm2 };

// Algorithm 2, line 4: x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) + sigma_t z
Tensor ddpm_step_algorithm2(const Schedule& s, const Tensor& xt, int64_t t, const Tensor& eps, Variance v,
                            const Tensor& z);
// x_0 = clip((x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t), -1, 1); x_{t-1} = mu_tilde_t(x_t, x_0) + sigma_t z (eq. 7)
Tensor ddpm_step_clipped(const Schedule& s, const Tensor& xt, int64_t t, const Tensor& eps, Variance v, const Tensor& z,
                         bool clip = true);
// Either form, drawing z from gen (only when t > 0).
Tensor ddpm_step(const Schedule& s, const Tensor& xt, int64_t t, const Tensor& eps, Variance v, Generator& gen,
                 DdpmForm form = DdpmForm::ClippedX0);

// DDIM (Song et al.; their alpha is our alpha_bar). t_prev < t is the next timestep of
// the sub-sequence; t_prev = -1 means x_0 (alpha_bar = 1).
// BEGIN HIDE ddim-step
// STUB: // Eq. 16: sigma_t(eta), DDPM's posterior standard deviation at eta = 1 (the assignment ddim-step).
// Eq. 16: sigma_t(eta) = eta sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_prev)
// END HIDE ddim-step
// Returns sigma itself (not squared). Golden: linear T = 1000, t = 420 -> t_prev = 400
// (0-based code indices), eta = 1: sigma^2 = 0.147720 (sigma = 0.38434).
double ddim_sigma(const Schedule& s, int64_t t, int64_t t_prev, double eta);
// BEGIN HIDE ddim-step
// STUB: // Eq. 12: x_prev from the predicted x_0, eps and sigma_t z (the assignment ddim-step).
// Eq. 12: x_prev = sqrt(alpha_bar_prev) (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)
//                  + sqrt(1 - alpha_bar_prev - sigma_t^2) eps + sigma_t z
// END HIDE ddim-step
// z may be undefined when sigma_t = 0 (eta = 0, or t_prev = -1). clip_x0: clip the
// predicted x_0 to [-1, 1] before using it, and use the eps that the clipped x_0 and x_t
// imply (not in the paper; Improved DDPM's DDIM sampler, diffusers' clip_sample): a small
// model's slightly wrong eps at large t otherwise predicts an x_0 far outside the data
// range, and the sample never recovers.
Tensor ddim_step(const Schedule& s, const Tensor& xt, int64_t t, int64_t t_prev, const Tensor& eps, double eta,
                 const Tensor& z, bool clip_x0 = false);
Tensor ddim_step(const Schedule& s, const Tensor& xt, int64_t t, int64_t t_prev, const Tensor& eps, double eta,
                 Generator& gen);

// ---- which S of the T timesteps a sampler visits (its "spacing")
//
// Each returns S distinct timesteps, ascending; S = T gives every step 0..T-1; 1 <= S <= T,
// else td::Error. A sampler walks them backwards from x_T ~ N(0, I), so the largest one is
// the t the model is first asked about: it should be T - 1, the only t at which x_t is pure
// noise (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed").
enum class Spacing { Leading, Trailing, Linspace };
// "leading", "trailing", "linspace"; td::Error listing them for anything else.
Spacing parse_spacing(const std::string& name);
std::string spacing_name(Spacing s);

// DDIM sec. 4.2 (and its code): t_i = floor(i T / S), i = 0..S-1. Starts at 0 and never
// reaches T - 1: for T = 1000, S = 50 it is 0, 20, ..., 980, so the first model call sees
// pure noise labelled t = 980; S = 1 is t = 0 alone, and returns the noise.
std::vector<int64_t> leading_timesteps(int64_t T, int64_t S);
// Lin et al. 2024, Table 2: t_i = round(T (S - i) / S) - 1, i = 0..S-1 (halves to even,
// as numpy). Ends at T - 1: T = 1000, S = 50 is 999, 979, ..., 19; S = 1 is 999.
std::vector<int64_t> trailing_timesteps(int64_t T, int64_t S);
// Improved DDPM's space_timesteps with one section: t_i = round(i (T - 1) / (S - 1)),
// keeping both ends (T = 1000, S = 10 is 0, 111, ..., 999). S = 1 keeps T - 1, where
// the reference keeps 0 (which would leave x_T as it is).
std::vector<int64_t> linspace_timesteps(int64_t T, int64_t S);
std::vector<int64_t> spaced_timesteps(Spacing spacing, int64_t T, int64_t S);

// DDIM's walk over ascending timesteps ts as (t, t_prev) pairs in sampling order:
// (ts[S-1], ts[S-2]), ..., (ts[0], -1), the last step landing on x_0 (alpha_bar = 1).
std::vector<std::pair<int64_t, int64_t>> ddim_step_pairs(const std::vector<int64_t>& ts);

}  // namespace td::diffusion
