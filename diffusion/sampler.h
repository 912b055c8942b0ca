// diffusion/sampler.h: the sampling loops. From x_T ~ N(0, I), walk the reverse
// process down to x_0, calling the model once per step:
//
//   ddpm  ancestral sampling (DDPM Algorithm 2) with sigma_t^2 = beta_t or beta_tilde_t.
//         With steps = T it visits every t; with fewer it uses the "respaced" process of
//         Improved DDPM (Nichol & Dhariwal 2021, sec. 4): on a sub-sequence t_1 < ... < t_S,
//         beta_i = 1 - alpha_bar(t_i) / alpha_bar(t_{i-1}), a DDPM of its own over S steps.
//         Its sub-sequence keeps both ends by default (linspace, Improved DDPM's rounding).
//   ddim  DDIM (Song et al. 2021, eq. 12) on a sub-sequence of the T steps, trailing by
//         default (999, 979, ..., 19 for S = 50), eta = 0 deterministic, eta = 1 ancestral (eq. 16).
//
// The sub-sequences are in sampling_math.h (leading, trailing, linspace). Whatever the
// spacing, the first model call should be at T - 1: only there is x_t pure noise, as the
// x_T the loop starts from is.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/forward_process.h"
#include "diffusion/sampling_math.h"
#include "diffusion/schedule.h"

namespace td::diffusion {

// The model is any function from (x_t, t) to the network's raw output (eps, x0 or v, as
// SamplerOptions::prediction says); it is turned into eps for the step. That keeps this
// file free of any particular network: the UNet, a latent UNet, or a guided pair of
// calls (classifier-free guidance) all plug in.
// x_t (B, ...) and t (B) int64 -> the network's output, shaped like x_t.
using Denoiser = std::function<Tensor(const Tensor& x_t, const Tensor& t)>;

// The two loops above. Words: "ddpm", "ddim".
enum class Sampler { Ddpm, Ddim };
Sampler parse_sampler(const std::string& name);  // td::Error listing the words
std::string sampler_name(Sampler s);

struct SamplerOptions {
    Sampler sampler = Sampler::Ddim;
    std::optional<Spacing> spacing;           // empty ("auto"): the sampler's own (sampler_spacing)
    int64_t steps = 50;                       // model calls; 1 <= steps <= T
    double eta = 0.0;                         // ddim only
    Variance variance = Variance::BetaTilde;  // ddpm only: sigma_t^2
    bool clip_x0 = true;                      // clip the predicted x_0 to [-1, 1] (DDPM reference code, diffusers)
    Prediction prediction = Prediction::Eps;
};
// Checks the options against a schedule (td::Error naming the bad one).
void check_sampler_options(const SamplerOptions& o, int64_t T);

// The spacings a sampler takes, its default first: ddim trailing, linspace, leading (the
// DDIM paper's own, kept to compare with); ddpm linspace, trailing. Not leading for ddpm:
// its respaced process is a DDPM over the kept steps, whose top step must be T - 1 to
// start from N(0, I).
std::vector<Spacing> spacing_choices(Sampler sampler);
// o.spacing, with auto resolved to the sampler's default; td::Error for a spacing the
// sampler does not take.
Spacing sampler_spacing(const SamplerOptions& o);

// Called after each step with (i, t, x): i counts steps done (1..steps), t is the
// timestep just denoised (0-based), x the new, less noisy sample.
using StepCallback = std::function<void(int64_t i, int64_t t, const Tensor& x)>;

// The timesteps the loop visits, in sampling order (descending).
std::vector<int64_t> sampling_timesteps(const SamplerOptions& o, int64_t T);

// Runs the loop from x_T (the starting noise, given so a caller can fix it) to x_0, on
// x_T's device: the timesteps and the noise z are made there, and the model must live there.
// Runs under NoGradGuard: sampling builds no graph.
Tensor sample(const Schedule& s, const Denoiser& model, const Tensor& x_T, const SamplerOptions& o, Generator& gen,
              const StepCallback& on_step = {});

// The respaced betas of Improved DDPM sec. 4 for an ascending sub-sequence ts of 0..T-1:
// beta_i = 1 - alpha_bar(ts[i]) / alpha_bar(ts[i-1]), with alpha_bar(ts[-1]) = 1.
std::vector<double> respaced_betas(const Schedule& s, const std::vector<int64_t>& ts);

}  // namespace td::diffusion
