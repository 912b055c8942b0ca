// %% [markdown]
// # 04 The forward process q(x_t | x_0)
//
// A diffusion model learns to undo one fixed, boring process: adding a little Gaussian
// noise to an image, T = 1000 times. This notebook looks at that process alone (no
// network yet): its two definitions, step by step (DDPM eq. 2) and in closed form
// (DDPM eq. 4), checked against each other numerically; what it does to a real MNIST
// digit under the linear schedule of DDPM and the cosine schedule of Improved DDPM
// (eq. 17); and the signal-to-noise ratio, the one curve that says where a model spends
// its effort.
//
// The engine's side of it: `diffusion/schedule.h` (the betas and everything derived from
// them) and `diffusion/forward_process.h` (`q_sample`, eq. 4).
//
// **The timestep convention.** Code t = 0..T-1 is the paper's t = 1..T
// (`diffusion/schedule.h` says so once for the whole engine). Below, "t" is always the
// code index; t = 999 is the paper's x_T.

// %%
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "diffusion/data/dataset.h"
#include "diffusion/forward_process.h"
#include "diffusion/schedule.h"
#include "notebooks-cpp/notebook.h"

using namespace td;
using namespace td::diffusion;

const char* NB = "04-forward-process";

// DDPM eq. 2: q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I), one draw of it.
Tensor q_step(const Tensor& x_prev, double beta_t, Generator& gen) {
    Tensor z = randn(x_prev.shape(), gen);
    return x_prev * (float)std::sqrt(1.0 - beta_t) + z * (float)std::sqrt(beta_t);
}

// SNR(t) = alpha_bar_t / (1 - alpha_bar_t): the power of the signal sqrt(alpha_bar_t) x_0
// over the power of the noise sqrt(1 - alpha_bar_t) eps in x_t (data of unit scale).
double snr(double alpha_bar) { return alpha_bar / (1.0 - alpha_bar); }

// The least-squares slope of y against x over the pixels: sum(x y) / sum(x x).
double slope(const std::vector<float>& x, const std::vector<float>& y) {
    double xy = 0, xx = 0;
    for (size_t i = 0; i < x.size(); ++i) xy += (double)x[i] * y[i], xx += (double)x[i] * x[i];
    return xy / xx;
}

// Over N draws of x_t (rows of `xs`, shape (N, D)), per pixel: the mean's slope against
// x_0 (eq. 4 says sqrt(alpha_bar_t)) and the variance averaged over pixels (eq. 4 says
// 1 - alpha_bar_t).
struct Moments {
    double mean_coef, variance;
};
Moments moments(const Tensor& xs, const std::vector<float>& x0) {
    Tensor m = mean(xs, {0});                 // (D): the per-pixel mean over the N draws
    Tensor v = var(xs, {0}, false, 1);        // (D): the per-pixel (unbiased) variance
    std::vector<float> vv = v.to_vector();
    double avg_var = 0;
    for (float f : vv) avg_var += f;
    return {slope(x0, m.to_vector()), avg_var / (double)vv.size()};
}

int main() {
    // %% [markdown]
    // ## A digit and two schedules
    //
    // DDPM fixes betas linear from beta_1 = 1e-4 to beta_T = 0.02 (T = 1000). With
    // alpha_t = 1 - beta_t and alpha_bar_t = prod_{s<=t} alpha_s (DDPM sec. 2), everything
    // else follows. Improved DDPM (Nichol & Dhariwal 2021) instead picks alpha_bar
    // directly, eq. 17: alpha_bar_t = f(t) / f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2),
    // s = 0.008, and recovers beta_t = 1 - alpha_bar_t / alpha_bar_{t-1} (clipped to
    // 0.999). Both are built by `Schedule::named` (`linear_betas`, `cosine_betas` in
    // `diffusion/schedule.cpp`).

    // %%
    Dataset mnist = load_dataset("mnist", "train");
    int64_t index = 0;
    while (mnist.labels.to_vector_i64()[index] != 3) ++index;  // the first 3 of the training set
    Tensor x0 = mnist.images.narrow(0, index, 1).contiguous();  // (1, 1, 28, 28) in [-1, 1]
    std::printf("MNIST train: %lld images; x_0 = image %lld (a %lld)\n", (long long)mnist.size(), (long long)index,
                (long long)mnist.labels.to_vector_i64()[index]);
    nb::describe("x_0", x0);

    Schedule lin = Schedule::named("linear", 1000), cos = Schedule::named("cosine", 1000);
    std::printf("\n%6s | %-30s | %-30s\n", "t", "linear: beta   alpha_bar", "cosine: beta   alpha_bar");
    for (int64_t t : {0, 1, 99, 299, 499, 699, 899, 998, 999})
        std::printf("%6lld | %10.6f   %12.6g     | %10.6f   %12.6g\n", (long long)t, lin.beta[t], lin.alpha_bar[t],
                    cos.beta[t], cos.alpha_bar[t]);

    // %% [markdown]
    // Both start almost noiseless (alpha_bar near 1) and end almost pure noise
    // (alpha_bar near 0), but they get there at different speeds: halfway through
    // (t = 499) the linear schedule keeps alpha_bar = 0.08 of the signal's power, the
    // cosine one about 0.5. The cosine's last beta is the clip at 0.999 (f(T) = 0 would
    // make it exactly 1, and then x_T would not depend on x_0 at all, which is fine for
    // sampling but divides by zero in eq. 7's posterior).

    // %% [markdown]
    // ## The closed form, eq. 4
    //
    // Composing T Gaussian steps gives a Gaussian, and DDPM eq. 4 writes it down:
    //
    // `q(x_t | x_0) = N(x_t; sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)`,
    // i.e. `x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps`, eps ~ N(0, I).
    //
    // This is `q_sample(schedule, x0, t, eps)` in `diffusion/forward_process.cpp`: one
    // multiply-add per pixel, for any t, with no loop over the steps before it. That is
    // what makes training cheap (Algorithm 1 jumps straight to a random t, notebook 05).
    //
    // Below, the same eps for every picture, so the two rows differ only by their
    // schedule: first column x_0, then t = 50, 100, 200, 300, 500, 700, 999.

    // %%
    std::vector<int64_t> ts = {50, 100, 200, 300, 500, 700, 999};
    int64_t n = (int64_t)ts.size();
    Generator gen(0);
    Tensor eps = randn({1, 1, 28, 28}, gen);
    Tensor x0s = x0.expand({n, 1, 28, 28}).contiguous();     // the digit, n times
    Tensor epss = eps.expand({n, 1, 28, 28}).contiguous();   // one eps for every t
    Tensor t_batch = Tensor::from_vector_i64(ts, {n});
    Tensor x_lin = q_sample(lin, x0s, t_batch, epss);        // eq. 4, all seven t at once
    Tensor x_cos = q_sample(cos, x0s, t_batch, epss);
    Tensor grid = cat({x0, x_lin, x0, x_cos}, 0);            // (16, 1, 28, 28): two rows of 8
    nb::show_grid(NB, "forward-grid.png", grid, 8,
                  "x_0, then x_t at t = 50, 100, 200, 300, 500, 700, 999 (eq. 4, the same eps). "
                  "Top: linear schedule. Bottom: cosine schedule.", 3);
    // root mean square over the pixels: sqrt(mean(x^2)), the image's "power"
    auto rms = [](const Tensor& img) { return std::sqrt(mean(img * img).item()); };
    std::printf("x_0: mean %+.3f, rms %.3f\n", mean(x0).item(), rms(x0));
    std::printf("%5s | %-36s | %-36s\n", "t", "linear: sqrt(alpha_bar)  mean   rms", "cosine: sqrt(alpha_bar)  mean   rms");
    for (int64_t i = 0; i < n; ++i) {
        Tensor a = x_lin.narrow(0, i, 1), b = x_cos.narrow(0, i, 1);
        std::printf("%5lld |         %.3f         %+.3f  %.3f |         %.3f         %+.3f  %.3f\n", (long long)ts[i],
                    lin.sqrt_alpha_bar[ts[i]], mean(a).item(), rms(a), cos.sqrt_alpha_bar[ts[i]], mean(b).item(), rms(b));
    }

    // %% [markdown]
    // Under the linear schedule the digit is hard to see by t = 300 and gone by t = 500;
    // under the cosine one it is still legible at t = 500 and fades over the last
    // few hundred steps. The printed numbers say the same thing without eyes: the mean of
    // x_t (the black background, -1, dominates it) shrinks with sqrt(alpha_bar_t) towards
    // the noise's mean 0. Its rms, though, hardly moves (0.95 for x_0, about 1 for x_T): each
    // step of eq. 2 shrinks the image by sqrt(1 - beta_t) just as much as it adds noise of
    // variance beta_t, so the scale is kept ("variance preserving"), and x_T is as close
    // to N(0, I), the distribution the sampler starts from, as alpha_bar_T is to 0.

    // %% [markdown]
    // ## Step by step, eq. 2, gives the same distribution
    //
    // The forward process is *defined* as a Markov chain, DDPM eq. 2:
    // `q(x_t | x_{t-1}) = N(x_t; sqrt(1 - beta_t) x_{t-1}, beta_t I)`,
    // a fresh draw of noise at every step (`q_step` above). Eq. 4 claims that after t
    // steps the result is distributed as N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I).
    // A claim about a distribution is checked with many draws: run the chain on N = 512
    // copies of the digit (independent noise each), and at several t measure, over the
    // copies, (a) each pixel's mean, regressed on x_0 (the slope should be
    // sqrt(alpha_bar_t)), and (b) each pixel's variance, averaged over the pixels (should
    // be 1 - alpha_bar_t). Beside it, the same statistics of N draws of eq. 4 directly, and
    // "se", the standard error those estimates have at this N when eq. 4 holds (the
    // slope's: sqrt((1 - alpha_bar_t) / (N sum_i x_0i^2)); the average variance's:
    // (1 - alpha_bar_t) sqrt(2 / (N - 1)) / sqrt(D) for D = 784 independent pixels).

    // %%
    const int64_t N = 512, D = 28 * 28;
    std::vector<float> x0_flat = x0.to_vector();                     // (D)
    Tensor x = x0.reshape({1, D}).expand({N, D}).contiguous();       // x_0, N copies: (N, D)
    Tensor x0_rows = x;                                              // kept for eq. 4 below
    std::vector<int64_t> checkpoints = {49, 99, 299, 599, 999};
    Generator chain_gen(1), direct_gen(2);
    double sum_x0_sq = 0;
    for (float v : x0_flat) sum_x0_sq += (double)v * v;
    std::printf("%5s | %-36s | %s\n", "", "mean's slope on x_0", "variance");
    std::printf("%5s | %-15s %6s %6s %6s | %-13s %6s %6s %6s\n", "t", "sqrt(alpha_bar)", "chain", "direct", "se",
                "1 - alpha_bar", "chain", "direct", "se");
    size_t next = 0;
    for (int64_t t = 0; t < lin.T && next < checkpoints.size(); ++t) {
        x = q_step(x, lin.beta[t], chain_gen);                        // x_{t} from x_{t-1}
        if (t != checkpoints[next]) continue;
        ++next;
        Tensor t_rows = Tensor::from_vector_i64(std::vector<int64_t>(N, t), {N});
        Tensor direct = q_sample(lin, x0_rows, t_rows, randn({N, D}, direct_gen));  // eq. 4
        Moments mc = moments(x, x0_flat), md = moments(direct, x0_flat);
        double noise_var = 1.0 - lin.alpha_bar[t];
        double se_slope = std::sqrt(noise_var / ((double)N * sum_x0_sq));
        double se_var = noise_var * std::sqrt(2.0 / (double)(N - 1)) / std::sqrt((double)D);
        std::printf("%5lld | %15.4f %6.4f %6.4f %6.4f | %13.4f %6.4f %6.4f %6.4f\n",
                    (long long)t, lin.sqrt_alpha_bar[t], mc.mean_coef, md.mean_coef, se_slope, noise_var, mc.variance,
                    md.variance, se_var);
    }

    // %% [markdown]
    // The chain's numbers differ from the closed form by at most about two standard
    // errors, just as the direct draws of eq. 4 do: within sampling error, 1000 small steps and one
    // big jump give the same distribution. (Why, in one line: if
    // x_{t-1} = sqrt(alpha_bar_{t-1}) x_0 + sqrt(1 - alpha_bar_{t-1}) eps', then
    // x_t = sqrt(alpha_t alpha_bar_{t-1}) x_0 + [sqrt(alpha_t (1 - alpha_bar_{t-1})) eps' + sqrt(beta_t) z],
    // and two independent Gaussians add their variances:
    // alpha_t (1 - alpha_bar_{t-1}) + 1 - alpha_t = 1 - alpha_bar_t.)

    // %% [markdown]
    // ## The signal-to-noise ratio
    //
    // In x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps the signal's share of the
    // power is alpha_bar_t and the noise's is 1 - alpha_bar_t, so
    // `SNR(t) = alpha_bar_t / (1 - alpha_bar_t)` (the quantity Variational Diffusion
    // Models, Kingma et al. 2021, build their analysis on). It falls monotonically from
    // very large (x_t is the image) to nearly 0 (x_t is noise). Plotted on a log scale:

    // %%
    std::vector<float> t_axis, snr_lin, snr_cos;
    for (int64_t t = 0; t < lin.T; ++t) {
        t_axis.push_back((float)t);
        snr_lin.push_back((float)snr(lin.alpha_bar[t]));
        snr_cos.push_back((float)snr(cos.alpha_bar[t]));
    }
    // The plot draws no axis labels: horizontal lines at every power of 10 give the scale.
    // The cosine's last two steps (SNR 2e-6, 2e-9: the beta clip) are left off, or they
    // would squash the rest of the picture.
    const int64_t shown = lin.T - 2;
    std::vector<float> t_shown(t_axis.begin(), t_axis.begin() + shown);
    std::vector<td::plot::Series> curves;
    for (int k = -4; k <= 4; ++k)
        curves.push_back({{0.0f, (float)(shown - 1)}, {(float)std::pow(10.0, k), (float)std::pow(10.0, k)},
                          k == 0 ? 0x555555u : 0xbbbbbbu});
    curves.push_back({t_shown, std::vector<float>(snr_lin.begin(), snr_lin.begin() + shown), 0x1f77b4});
    curves.push_back({t_shown, std::vector<float>(snr_cos.begin(), snr_cos.begin() + shown), 0xff7f0e});
    nb::show_plot(NB, "snr.png", curves,
                  "SNR(t) = alpha_bar_t / (1 - alpha_bar_t) on a log scale, t = 0 (left) to 997 (right). Blue: linear "
                  "schedule; orange: cosine. Horizontal lines at 1e-4, 1e-3, ..., 1e4; the dark one is SNR = 1.", true);
    std::printf("%6s | %12s %12s\n", "t", "SNR linear", "SNR cosine");
    for (int64_t t : {0, 99, 199, 299, 499, 699, 899, 998})
        std::printf("%6lld | %12.4g %12.4g\n", (long long)t, snr_lin[t], snr_cos[t]);
    auto first_below = [&](const std::vector<float>& s, float level) {
        return (int64_t)(std::find_if(s.begin(), s.end(), [&](float v) { return v < level; }) - s.begin());
    };
    std::printf("SNR falls below 1 at t = %lld (linear), t = %lld (cosine)\n", (long long)first_below(snr_lin, 1.0f),
                (long long)first_below(snr_cos, 1.0f));

    // %% [markdown]
    // ## Where the model spends its capacity
    //
    // Training (Algorithm 1) draws t uniformly from 1..T, so every timestep gets the same
    // share of the gradient steps, and sampling (Algorithm 2) spends one network call per
    // step. What that effort buys depends on the SNR at that step. Three rough regimes:
    // SNR > 10 (x_t is the image with a grain of noise: the model only polishes texture),
    // 0.01 < SNR < 10 (the noise is comparable to the digit: this is where the model
    // decides *which* digit and its shape), SNR < 0.01 (x_t is noise; the best the model can
    // say is "roughly the average digit", and it barely matters what it says). How many of
    // the 1000 steps fall in each:

    // %%
    auto share = [&](const std::vector<float>& s, float lo, float hi) {
        return (double)std::count_if(s.begin(), s.end(), [&](float v) { return v >= lo && v < hi; }) / (double)s.size();
    };
    std::printf("%-26s %10s %10s\n", "regime", "linear", "cosine");
    std::printf("%-26s %9.1f%% %9.1f%%\n", "SNR > 10 (details)", 100 * share(snr_lin, 10, INFINITY),
                100 * share(snr_cos, 10, INFINITY));
    std::printf("%-26s %9.1f%% %9.1f%%\n", "0.01 < SNR < 10 (shape)", 100 * share(snr_lin, 0.01f, 10),
                100 * share(snr_cos, 0.01f, 10));
    std::printf("%-26s %9.1f%% %9.1f%%\n", "SNR < 0.01 (noise)", 100 * share(snr_lin, 0, 0.01f),
                100 * share(snr_cos, 0, 0.01f));
    // How straight is log SNR in the middle? Its largest gap, in powers of 10, to the
    // straight line joining its values at t = 200 and t = 800.
    auto bend = [](const std::vector<float>& s) {
        double a = std::log10(s[200]), b = std::log10(s[800]), gap = 0;
        for (int t = 200; t <= 800; ++t) gap = std::max(gap, std::abs(std::log10(s[t]) - (a + (b - a) * (t - 200) / 600.0)));
        return gap;
    };
    std::printf("log10 SNR, t = 200..800: largest gap to a straight line: linear %.3f, cosine %.3f\n", bend(snr_lin),
                bend(snr_cos));
    return 0;
}

// %% [markdown]
// The linear schedule spends about a third of its steps in the SNR < 0.01 regime,
// where x_t carries almost nothing of x_0. That is the observation behind Improved DDPM
// sec. 3.2: with the linear schedule the end of the forward process is so noisy that it
// contributes little, and skipping a good part of the noisiest reverse steps barely
// changes sample quality. The cosine
// schedule moves those steps into the middle range, where the image's structure is
// decided, and its log SNR falls almost linearly in t there (the orange curve is
// nearly straight: 0.07 powers of ten from a straight line, against 0.21 for the
// linear schedule), so neighbouring steps differ by a similar amount of information.
// It also gives twice as many steps to the nearly clean end, where fine detail is
// drawn; what it gives up is the flat tail of pure noise.
//
// Nothing here was learned: q has no parameters. Notebook 05 takes one training step
// on exactly these x_t, and notebook 06 runs the process backwards with a trained
// network. To try: replace "cosine" by "scaled_linear" (latent diffusion's schedule)
// above and see where its SNR curve lies.
