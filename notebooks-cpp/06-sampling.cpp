// %% [markdown]
// # 06 Ancestral sampling vs DDIM
//
// Drawing digits from the trained demo network two ways, DDPM's ancestral sampling (1000
// steps) and DDIM (50 or fewer), step by step and side by side.
// Notebook 05 trained eps_theta(x_t, t) to name the noise in x_t. Sampling uses it to run
// the forward process of notebook 04 backwards: start from pure noise x_T ~ N(0, I) and
// remove a little noise at a time until an image is left. Two ways to take those steps:
//
// - **Ancestral sampling**, DDPM's Algorithm 2: a Markov chain of T = 1000 small
//   Gaussian steps, each adding fresh noise. Eq. 11 gives the mean of each step,
//   `mu_theta(x_t, t) = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta(x_t, t))`,
//   and Algorithm 2, line 4 samples around it:
//   `x_{t-1} = mu_theta(x_t, t) + sigma_t z`, z ~ N(0, I) (z = 0 on the last step),
//   sigma_t^2 = beta_t or beta_tilde_t (both work, sec. 3.2).
// - **DDIM** (Song, Meng, Ermon 2021), eq. 12, in their notation where alpha means our
//   alpha_bar: predict x_0 from eps, then jump to any earlier t along the same line:
//   `x_{t-1} = sqrt(alpha_bar_{t-1}) x0_pred + sqrt(1 - alpha_bar_{t-1} - sigma_t^2) eps_theta + sigma_t z`,
//   `x0_pred = (x_t - sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_bar_t)`.
//   With eta = 0 in eq. 16, sigma_t = 0: no noise is added, the map from x_T to x_0 is
//   deterministic, and "t-1" may be any earlier step of a sub-sequence, so 50 steps
//   can stand in for 1000.
//
// The engine: one step of each in `diffusion/sampling_math.cpp` (`ddpm_step_algorithm2`,
// `ddpm_step_clipped`, `ddim_step`), the loops in `diffusion/sampler.cpp` (`sample`).
// The network is the demo's, trained by `make demo` into `runs/demo/`.

// %%
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "diffusion/data/dataset.h"
#include "diffusion/data/image_io.h"
#include "diffusion/forward_process.h"
#include "diffusion/model_file.h"
#include "diffusion/sampler.h"
#include "notebooks-cpp/notebook.h"

using namespace td;
using namespace td::diffusion;

const char* NB = "06-sampling";

// Seconds since `start`.
double since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The largest |a - b| over all elements, and the root-mean-square difference.
double max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(a - b)).item(); }
double rms_diff(const Tensor& a, const Tensor& b) { return std::sqrt(mean((a - b) * (a - b)).item()); }

// Two grids of images side by side in one picture, a white gap between them.
Tensor side_by_side(const Tensor& left, const Tensor& right, int64_t ncol) {
    Tensor a = make_grid(left, ncol), b = make_grid(right, ncol);  // (C, H', W')
    Tensor gap = full({a.size(0), a.size(1), 8}, 1.0f);
    return cat({a, gap, b}, 2);
}

// Runs a sampler from x_T and keeps, for the denoising strip, the first `rows` samples
// whenever the sample reaches one of `levels` (a timestep; -1 means x_0, the end).
struct Run {
    Tensor x0;                    // (N, C, H, W) the samples
    std::vector<Tensor> strip;    // x at each level, (rows, C, H, W) each
    double seconds = 0;
};
Run run_sampler(const LoadedModel& m, const Tensor& x_T, const SamplerOptions& o, uint64_t seed,
                const std::vector<int64_t>& levels = {}, int64_t rows = 4) {
    std::vector<int64_t> ts = sampling_timesteps(o, m.schedule.T);  // descending
    Run r;
    if (!levels.empty()) r.strip.push_back(x_T.narrow(0, 0, rows).clone());
    Generator gen(seed);
    auto keep = [&](int64_t i, int64_t, const Tensor& x) {
        int64_t level = i < (int64_t)ts.size() ? ts[i] : -1;  // where x now is: the next timestep, or x_0
        for (int64_t l : levels)
            if (l == level) r.strip.push_back(x.narrow(0, 0, rows).clone());
    };
    auto start = std::chrono::steady_clock::now();
    SamplerOptions with_model = o;
    with_model.prediction = m.info.prediction;  // what the network outputs (v for the demo), turned into eps per step
    r.x0 = sample(m.schedule, m.denoiser(), x_T, with_model, gen, keep);
    r.seconds = since(start);
    return r;
}

// The strip as one (rows * levels, C, H, W) batch laid out row by row: sample j's
// snapshots side by side in row j.
Tensor strip_rows(const std::vector<Tensor>& strip) {
    std::vector<Tensor> per_sample;
    int64_t rows = strip[0].size(0);
    for (int64_t j = 0; j < rows; ++j)
        for (const Tensor& s : strip) per_sample.push_back(s.narrow(0, j, 1));
    return cat(per_sample, 0);
}

int main() {
    // %% [markdown]
    // ## The model and the starting noise
    //
    // `load_model` reads `runs/demo/model.safetensors`: the EMA weights and, in the file's
    // metadata, everything else the sampler needs (UNet shape, schedule, T, what the network
    // predicts). We draw x_T once, 16 images of N(0, I), and start every sampler below from
    // this same tensor, so every difference between pictures comes from the sampler.

    // %%
    LoadedModel m = load_model("runs/demo/model.safetensors");
    std::printf("model: %s, %lld parameters; schedule %s, T = %lld, predicts %s\n", m.info.unet.describe().c_str(),
                (long long)m.unet->num_parameters(), beta_schedule_name(m.info.schedule).c_str(), (long long)m.info.T,
                prediction_name(m.info.prediction).c_str());
    const int64_t N = 16;
    Generator noise(0);
    Tensor x_T = randn(m.noise_shape(N), noise);   // (16, 1, 28, 28), x_T ~ N(0, I)
    nb::describe("x_T", x_T);

    // %% [markdown]
    // ## One step of each, by hand
    //
    // Before running the loops, check one step of each against its equation, written out
    // here with tensors, at the first step of DDIM's 50-step walk. `sampling_timesteps`
    // gives the walk the sampler itself takes: t = 999 (the paper's t = T, where x_t is
    // pure noise, as our x_T), then 979, ..., 19 (trailing spacing, `docs/equations.md`).
    // eps_theta is one call of the network; the demo network predicts v, and `model_eps`
    // turns its output into the eps it implies (the samplers do the same at every step,
    // told by `SamplerOptions::prediction`). For DDPM, sigma_t^2 = beta_tilde_t (eq. 7,
    // "fixed small", the engine's default) and one draw of z.

    // %%
    const Schedule& s = m.schedule;
    SamplerOptions ddim_opt;
    ddim_opt.sampler = Sampler::Ddim, ddim_opt.steps = 50, ddim_opt.eta = 0.0;  // spacing: auto, trailing for ddim
    std::vector<int64_t> walk = sampling_timesteps(ddim_opt, s.T);      // 999, 979, ..., 19
    const int64_t t = walk[0], t_prev = walk[1];
    Tensor eps = [&] {  // the network predicts v (configs/mnist-demo.cfg): model_eps gives the eps it implies
        NoGradGuard no_grad;
        Tensor tt = Tensor::from_vector_i64(std::vector<int64_t>(N, t), {N});
        return model_eps(m.info.prediction, s, x_T, tt, m.denoiser()(x_T, tt));
    }();
    Tensor z = randn(x_T.shape(), noise);
    float a = (float)s.alpha[t], ab = (float)s.alpha_bar[t], b = (float)s.beta[t];
    float sigma = (float)std::sqrt(ddpm_sigma2(s, t, Variance::BetaTilde));
    // eq. 11 and Algorithm 2, line 4: x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) + sigma_t z
    Tensor ddpm_by_hand = (x_T - eps * (b / std::sqrt(1.0f - ab))) / std::sqrt(a) + z * sigma;
    Tensor ddpm_engine = ddpm_step_algorithm2(s, x_T, t, eps, Variance::BetaTilde, z);
    std::printf("DDPM step, t = %lld: sigma_t = %.5f; |by hand - ddpm_step_algorithm2| max = %.2e\n", (long long)t,
                sigma, max_abs_diff(ddpm_by_hand, ddpm_engine));
    // DDIM eq. 12 with sigma = 0, from t straight to the walk's next step t_prev
    float ab_prev = (float)s.alpha_bar[t_prev];
    Tensor x0_pred = (x_T - eps * std::sqrt(1.0f - ab)) / std::sqrt(ab);
    Tensor ddim_by_hand = x0_pred * std::sqrt(ab_prev) + eps * std::sqrt(1.0f - ab_prev);
    Tensor ddim_engine = ddim_step(s, x_T, t, t_prev, eps, 0.0, Tensor());
    std::printf("DDIM step, %lld -> %lld: |by hand - ddim_step| max = %.2e\n", (long long)t, (long long)t_prev,
                max_abs_diff(ddim_by_hand, ddim_engine));
    nb::describe("eps_theta", eps);
    nb::describe("x0_pred", x0_pred);

    // %% [markdown]
    // Both agree with the engine to float rounding. Look at x0_pred: at t = 999,
    // alpha_bar = 4e-5, so `x0_pred = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)` divides a
    // small difference by 0.006. For a network that predicts eps, its small errors there
    // become large errors in x0_pred, far outside [-1, 1]. The demo network predicts v,
    // and its x_0 is `sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v`, no division (notebook 14),
    // so its x0_pred above is a blurred guess at a digit instead; that is why
    // `configs/mnist-demo.cfg` chose v. Whatever the model predicts, the sampler's
    // loops guard against it by default with the form of DDPM's reference code (`clip_x0`): clip x0_pred
    // to [-1, 1], then take the posterior mean of eq. 7 (`ddpm_step_clipped`); without
    // clipping it is the same formula as Algorithm 2. DDIM clips its x0_pred the same
    // way (as diffusers' `clip_sample` does).

    // %% [markdown]
    // ## Ancestral sampling, 1000 steps, and DDIM, 50 steps
    //
    // Same x_T, two samplers. DDPM visits every t = 999, 998, ..., 0: 1000 network calls.
    // DDIM with 50 steps visits t = 999, 979, ..., 39, 19 (`trailing_timesteps`: evenly
    // spaced, starting at T - 1, where x_T is) and then x_0: 50 calls. The DDIM paper's
    // own grid, 980, 960, ..., 0 ("leading", `--spacing leading`), would start by telling the
    // network that pure noise is x_980. DDPM's 1000 calls are most of this
    // notebook's running time, so it draws only the first 8 of the 16 starting noises.
    // Along the way we keep the first four samples at a few timesteps for the strips
    // below.

    // %%
    std::vector<int64_t> levels = {799, 599, 399, 299, 199, 99, 39, -1};  // on both walks; -1: x_0
    SamplerOptions ddpm_opt;
    ddpm_opt.sampler = Sampler::Ddpm, ddpm_opt.steps = 1000;  // sigma_t^2 = beta_tilde, x_0 clipped (the defaults)
    const int64_t N_ddpm = 8;
    Run ddpm = run_sampler(m, x_T.narrow(0, 0, N_ddpm).contiguous(), ddpm_opt, 1, levels);
    Run ddim = run_sampler(m, x_T, ddim_opt, 1, levels);
    std::printf("DDPM, 1000 steps: %.1f s for %lld images (%.3f s per image)\n", ddpm.seconds, (long long)N_ddpm,
                ddpm.seconds / N_ddpm);
    std::printf("DDIM,   50 steps: %.1f s for %lld images (%.3f s per image)\n", ddim.seconds, (long long)N,
                ddim.seconds / N);
    nb::describe("x_0 (DDPM)", ddpm.x0);
    nb::describe("x_0 (DDIM)", ddim.x0);
    nb::show_image(NB, "ddpm-vs-ddim.png", side_by_side(ddpm.x0, ddim.x0.narrow(0, 0, N_ddpm), 4),
                   "The same 8 starting noises x_T. Left: ancestral DDPM, 1000 steps. Right: DDIM (eta = 0), 50 steps.",
                   4);

    // %% [markdown]
    // Twenty times fewer network calls, and to the eye DDIM's digits are about as good
    // (both sets have their malformed ones: a small network, ten minutes of training).
    // They are *not* the same digits as DDPM's. Ancestral sampling adds fresh noise at every
    // step (1000 draws of z), so x_T decides little about where it ends up; DDIM's eta = 0
    // path is a deterministic function of x_T alone. Which is better for this model? The
    // README's table, scored with an MNIST classifier on 500-1000 samples, says ancestral
    // (100 steps) gives more recognisable digits here (65% vs 56% for DDIM-50): the extra
    // noise lets the sampler correct the small network's mistakes along the way.

    // %% [markdown]
    // ## Denoising strips
    //
    // Four of the samples, each row one sample, at the timesteps t = 999 (x_T), 799, 599,
    // 399, 299, 199, 99, 39 and at the end (x_0): the top four rows are DDPM's, the bottom
    // four DDIM's.

    // %%
    nb::show_grid(NB, "strips.png", cat({strip_rows(ddpm.strip), strip_rows(ddim.strip)}, 0), (int64_t)levels.size() + 1,
                  "Rows 1-4: DDPM (1000 steps); rows 5-8: DDIM (50 steps). Columns: x_t at t = 999, 799, 599, 399, "
                  "299, 199, 99, 39, then x_0.", 2);
    Dataset real = load_dataset("mnist", "test");
    std::printf("std of real MNIST pixels (2,000 held-out digits, in [-1, 1]): %.3f\n",
                std::sqrt(var(real.images).item()));
    for (size_t k = 0; k < ddpm.strip.size(); ++k)
        std::printf("t = %4s   DDPM x_t std %.3f   DDIM x_t std %.3f\n",
                    k == 0 ? "999" : levels[k - 1] < 0 ? "x_0" : std::to_string(levels[k - 1]).c_str(),
                    std::sqrt(var(ddpm.strip[k]).item()), std::sqrt(var(ddim.strip[k]).item()));

    // %% [markdown]
    // Both strips show the digit emerging the way notebook 04's forward process hid it,
    // in reverse: nothing to see at t = 799 and 599, a hint at 399, the shape at 299 and
    // 199 (this linear schedule's SNR crosses 1 at t = 259), then clean strokes. The
    // printed std of x_t falls from 1 (pure noise) to about 0.65, close to the spread of
    // real MNIST pixels printed above it: the samplers take away the variance the forward
    // process added, no more and no less.

    // %% [markdown]
    // ## Fewer steps: the trade-off
    //
    // DDIM's sub-sequence can have any length. With S steps the time is S network calls;
    // the question is how far the result is from what more steps would give. Below: the
    // same x_T through DDIM with 10, 20, 50 and 100 steps, the time per image, and the RMS
    // difference to the 100-step result (pixels in [-1, 1]).

    // %%
    std::vector<int64_t> step_counts = {10, 20, 50, 100};
    std::vector<Run> runs;
    for (int64_t S : step_counts) {
        SamplerOptions o = ddim_opt;
        o.steps = S;
        runs.push_back(S == 50 ? ddim : run_sampler(m, x_T, o, 1));
    }
    std::printf("%6s %12s %16s %22s\n", "steps", "seconds", "s per image", "RMS diff to 100 steps");
    std::vector<Tensor> rows;
    for (size_t k = 0; k < step_counts.size(); ++k) {
        std::printf("%6lld %12.2f %16.4f %22.4f\n", (long long)step_counts[k], runs[k].seconds, runs[k].seconds / N,
                    rms_diff(runs[k].x0, runs.back().x0));
        rows.push_back(runs[k].x0.narrow(0, 0, 8));
    }
    nb::show_grid(NB, "ddim-steps.png", cat(rows, 0), 8,
                  "DDIM (eta = 0) from the same x_T, the first 8 samples. Rows: 10, 20, 50, 100 steps.", 3);

    // %% [markdown]
    // The time is linear in the number of steps (a step is one network call; the sampler's
    // own arithmetic is negligible). Down each column the digit is mostly the same at
    // every step count: with eta = 0, x_T alone decides the image's high-level features,
    // what DDIM sec. 5.2 calls sample consistency. More steps follow DDIM's deterministic
    // path from x_T to x_0 (an ODE, DDIM sec. 4.3) more closely; fewer steps cut corners,
    // which changes strokes, and now and then the digit itself. The RMS differences say
    // the path has not fully settled even at 50 steps for this small network. The demo
    // uses 50 as the compromise. Ancestral DDPM with few steps works too, on the
    // respaced process of Improved DDPM sec. 4 (`diffuse sample --sampler ddpm --steps 100`).

    // %% [markdown]
    // ## Determinism
    //
    // With eta = 0, DDIM adds no noise, so the sampler's own random generator is never
    // used: the same x_T must give the same image, bit for bit, whatever the seed
    // (checked on the 10-step run, the cheapest). With eta = 1 (eq. 16: sigma_t is then
    // DDPM's posterior standard deviation on the sub-sequence) fresh noise enters at every
    // step, and two runs from the same x_T differ.

    // %%
    SamplerOptions ddim10 = ddim_opt;
    ddim10.steps = 10;
    const Run& first = runs[0];                           // DDIM, 10 steps, eta = 0, generator seed 1
    Run again = run_sampler(m, x_T, ddim10, 12345);       // the same, another generator seed
    std::printf("DDIM eta = 0, seeds 1 and 12345: max |difference| = %g\n", max_abs_diff(first.x0, again.x0));
    SamplerOptions eta1 = ddim_opt;
    eta1.steps = 20, eta1.eta = 1.0;
    Run r1 = run_sampler(m, x_T, eta1, 1), r2 = run_sampler(m, x_T, eta1, 2);
    std::printf("DDIM eta = 1, seeds 1 and 2:     max |difference| = %.3f, RMS %.3f\n", max_abs_diff(r1.x0, r2.x0),
                rms_diff(r1.x0, r2.x0));
    nb::show_grid(NB, "determinism.png",
                  cat({first.x0.narrow(0, 0, 8), again.x0.narrow(0, 0, 8), r1.x0.narrow(0, 0, 8), r2.x0.narrow(0, 0, 8)}, 0),
                  8, "The same x_T. Rows 1-2: DDIM, 10 steps, eta = 0, generator seeds 1 and 12345 (identical). "
                     "Rows 3-4: DDIM, 20 steps, eta = 1, seeds 1 and 2 (different).", 3);
    return 0;
}

// %% [markdown]
// Determinism is what makes DDIM's x_T a *latent code*: it can be interpolated
// (DDIM sec. 5.3), stored, or found for a given image by running eq. 12 forwards
// (sec. 5.4), and a
// bug report that says "seed 0 gives a broken 7" can be reproduced exactly. Notebook
// 07 opens the network that all of these samplers call a thousand, or fifty, times.
