// read after: 04
// %% [markdown]
// # 11 Diffusion in two dimensions
//
// The whole of DDPM on 2,000 points in the plane, trained in under a minute, where every
// quantity can be drawn: the forward process, the learned score as arrows, and each
// sample's path back from noise.
//
// Images hide the process behind 784 numbers per sample. Points in the plane do not: a
// data set is a picture, so is x_t at any t, so is the network's answer at every place.
// Everything here is the engine's (`diffusion/toy2d.h`: the data made in code, a small
// MLP denoiser, Algorithm 1, the samplers on points), and `diffuse train toy` runs the
// same job and writes the same pictures into its run folder.

// %%
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "diffusion/toy2d.h"
#include "notebooks-cpp/notebook.h"

using namespace td;
using namespace td::diffusion;
namespace toy = td::diffusion::toy2d;

const char* NB = "11-toy-2d";
const unsigned kGrey = 0xbbbbbb, kBlue = 0x1f77b4, kOrange = 0xff7f0e, kRed = 0xd62728, kGreen = 0x2ca02c;

// The mean and the 2 x 2 covariance of points (N, 2), in double.
struct Moments2 {
    double mean[2], cov[2][2];
};
Moments2 moments(const Tensor& pts) {
    std::vector<float> v = pts.contiguous().to_vector();
    size_t n = v.size() / 2;
    Moments2 m{};
    for (size_t i = 0; i < n; ++i) m.mean[0] += v[2 * i] / (double)n, m.mean[1] += v[2 * i + 1] / (double)n;
    for (size_t i = 0; i < n; ++i)
        for (int a = 0; a < 2; ++a)
            for (int b = 0; b < 2; ++b) m.cov[a][b] += (v[2 * i + a] - m.mean[a]) * (v[2 * i + b] - m.mean[b]) / (double)(n - 1);
    return m;
}

// x_t for every point at one t (eq. 4), with fresh eps from gen.
Tensor noised(const Schedule& s, const Tensor& x0, int64_t t, Generator& gen) {
    int64_t n = x0.shape()[0];
    return q_sample(s, x0, Tensor::from_vector_i64(std::vector<int64_t>(n, t), {n}), randn({n, 2}, gen));
}

// Arrows of a vector field v (N, 2) at points g (N, 2), all scaled by the same factor so
// the longest one is `longest` data units long.
plot::Arrows arrows(const Tensor& g, const Tensor& v, float longest, unsigned rgb) {
    std::vector<float> gv = g.to_vector(), vv = v.to_vector();
    float top = 1e-12f;
    for (size_t i = 0; i + 1 < vv.size(); i += 2) top = std::max(top, std::hypot(vv[i], vv[i + 1]));
    plot::Arrows a;
    a.rgb = rgb;
    for (size_t i = 0; i + 1 < vv.size(); i += 2)
        a.x.push_back(gv[i]), a.y.push_back(gv[i + 1]), a.dx.push_back(longest * vv[i] / top),
            a.dy.push_back(longest * vv[i + 1] / top);
    return a;
}

int main() {
    // %% [markdown]
    // ## The data: two moons, made in code
    //
    // Two interleaved half circles with a little jitter (`toy2d::two_moons`), centred and
    // scaled so each coordinate has a spread near 1, the scale of the N(0, I) the process
    // ends in. A second draw of the same set, never trained on, is kept to judge samples by.

    // %%
    // One thread: the toy's matrices (256 x 128) are too small to split between cores; the
    // threads would spend longer waiting for each other than computing (on a busy 2-core
    // machine 300 training steps took 1.4 s on one thread and 30 s on two). The results
    // do not depend on the thread count.
    omp_set_num_threads(1);
    Generator gen(0);
    Tensor data = toy::two_moons(2000, gen), fresh = toy::two_moons(1000, gen);
    nb::describe("data", data);
    Moments2 md = moments(data);
    std::printf("mean (%+.3f, %+.3f), std (%.3f, %.3f)\n", md.mean[0], md.mean[1], std::sqrt(md.cov[0][0]),
                std::sqrt(md.cov[1][1]));

    // %% [markdown]
    // ## The forward process on points
    //
    // Nothing changes from images: eq. 4, `x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps`,
    // with the linear schedule, T = 1000. Each point drifts towards the origin by
    // sqrt(alpha_bar_t) while its own noise grows; by t = 999 the cloud should be N(0, I)
    // whatever the data were: mean 0, covariance the identity.

    // %%
    Schedule s = Schedule::named("linear", 1000);
    std::vector<plot::Points> clouds = {plot::points_xy(data.to_vector(), kGrey)};
    unsigned colours[] = {kBlue, kOrange, kRed};
    int k = 0;
    for (int64_t t : {50, 200, 999}) {
        Tensor xt = noised(s, data, t, gen);
        clouds.push_back(plot::points_xy(xt.narrow(0, 0, 500).to_vector(), colours[k++]));
        std::printf("t = %3lld: sqrt(alpha_bar) = %.3f\n", (long long)t, s.sqrt_alpha_bar[t]);
    }
    nb::show_scatter(NB, "forward.png", clouds, {}, {},
                     "The data (grey) and 500 of its points at t = 50 (blue), 200 (orange) and 999 (red)",
                     nb::plane_axes("x_0 and x_t"));
    Moments2 mT = moments(noised(s, data, 999, gen));
    std::printf("x_999: mean (%+.3f, %+.3f), covariance [[%.3f %+.3f] [%+.3f %.3f]]\n", mT.mean[0], mT.mean[1],
                mT.cov[0][0], mT.cov[0][1], mT.cov[1][0], mT.cov[1][1]);
    // 2,000 points: the standard error of a mean is 1/sqrt(2000) = 0.022, of a variance sqrt(2/2000) = 0.032
    nb::expect(std::abs(mT.mean[0]) < 0.07 && std::abs(mT.mean[1]) < 0.07, "x_999's mean is 0 within 3 standard errors");
    nb::expect(std::abs(mT.cov[0][0] - 1) < 0.1 && std::abs(mT.cov[1][1] - 1) < 0.1 && std::abs(mT.cov[0][1]) < 0.07,
               "x_999's covariance is the identity within 3 standard errors");

    // %% [markdown]
    // ## The denoiser: a small MLP, checked before it trains
    //
    // `toy2d::Mlp` reads [x_t, emb(t)] (the 2 coordinates and a 16-dimensional sinusoidal
    // embedding of t, the UNet's own, `nn/timestep_embedding.h`) through three hidden
    // layers of 128 SiLU units and outputs 2 numbers: its guess of eps. Its gradients come
    // from our autograd; `gradcheck` compares them with finite differences first.

    // %%
    toy::Mlp model(128, gen);
    Tensor xs = data.narrow(0, 0, 4), ts = Tensor::from_vector_i64({0, 10, 500, 999}, {4});
    GradcheckResult gc = gradcheck([&](const std::vector<Tensor>&) { return model.forward(xs, ts); }, model.parameters());
    std::printf("%lld parameters; gradcheck max |analytic - numeric| = %.2e\n", (long long)model.num_parameters(),
                gc.max_abs_error);
    nb::expect(gc.ok, "the MLP's backward agrees with finite differences");
    model.zero_grad();

    // %% [markdown]
    // ## Training: Algorithm 1, 8,000 steps
    //
    // Each step draws 256 points, a t for each, an eps for each, and takes one Adam step on
    // `|| eps - eps_theta(x_t, t) ||^2` (`toy2d::train`; the learning rate 3e-3 decays on a
    // cosine to 0). The loss cannot go to 0: at large t, x_t says little about which eps
    // made it, so even the best denoiser is left with an irreducible error there.
    //
    // Why 8,000 steps and not the 3,000 `diffuse train toy` takes by default: the loss
    // curve flattens early, but the samples keep improving long after. What the last
    // sampling steps need is a precise eps at small t, where x_t is within a few hundredths
    // of the data, and that is a small part of the average loss. The sampling section below
    // shows it: a second MLP, trained for 3,000 steps, sits beside this one in its table.

    // %%
    auto start = std::chrono::steady_clock::now();
    toy::TrainOptions topt;
    topt.steps = 8000;
    std::vector<float> losses = toy::train(model, s, data, topt);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::vector<float> steps, smooth;
    for (size_t i = 0; i < losses.size(); ++i) {
        double sum = 0;
        size_t from = i >= 99 ? i - 99 : 0;
        for (size_t j = from; j <= i; ++j) sum += losses[j];
        steps.push_back((float)(i + 1)), smooth.push_back((float)(sum / (double)(i - from + 1)));
    }
    plot::Axes la;
    la.title = "L_simple per step", la.xlabel = "training step", la.ylabel = "loss", la.log_y = true;
    nb::show_plot(NB, "loss.png", {{steps, losses, 0xcccccc}, {steps, smooth, kBlue}},
                  "The loss of each step (grey) and its mean over 100 steps (blue)", la);
    std::printf("%lld steps in %.1f s; loss, mean of the first 100 steps %.3f, of the last 100 %.3f\n",
                (long long)topt.steps, seconds, smooth[99], smooth.back());
    nb::expect(smooth.back() < 0.7 * smooth[99], "training lowered the loss by more than 30%");

    // %% [markdown]
    // ## The learned score field
    //
    // A denoiser is a score model in disguise. For eq. 4's Gaussian,
    // `grad_x log q(x_t | x_0) = -(x_t - sqrt(alpha_bar_t) x_0) / (1 - alpha_bar_t) = -eps / sqrt(1 - alpha_bar_t)`,
    // and averaging over the x_0 that could have made x_t (Tweedie's formula, notebook 13
    // derives it) gives the score of the noised data, `grad_x log q_t(x) = -E[eps | x_t] / sqrt(1 - alpha_bar_t)`.
    // L_simple is minimised by exactly that conditional mean, so
    // `score_theta(x, t) = -eps_theta(x, t) / sqrt(1 - alpha_bar_t)` (`toy2d::score`).
    // Drawn on a 21 x 21 grid: at small t the arrows point at the nearest moon; at large t,
    // where q_t is nearly N(0, I) whose score is -x, they point at the origin.

    // %%
    Tensor grid = toy::grid_points(-2.5f, 2.5f, 21);
    for (int64_t t : {20, 200, 800}) {
        Tensor sc = toy::score(model, Prediction::Eps, s, grid, t);
        nb::show_scatter(NB, nb::fmt("score-t%03lld.png", (long long)t), {plot::points_xy(data.to_vector(), kGrey)},
                         {}, {arrows(grid, sc, 0.25f, kBlue)},
                         nb::fmt("The learned score at t = %lld (arrows scaled so the longest is 0.25 long)", (long long)t),
                         nb::plane_axes(nb::fmt("score_theta(x, %lld)", (long long)t)));
    }
    // How well do the arrows agree with the two facts above? At t = 800, the cosine between
    // score_theta and -x; at t = 20, whether a small step along the arrow gets closer to the data.
    Tensor far = toy::score(model, Prediction::Eps, s, grid, 800);
    std::vector<float> g = grid.to_vector(), f = far.to_vector();
    double cos_sum = 0;
    for (size_t i = 0; i + 1 < g.size(); i += 2) {
        double dot = -(g[i] * f[i] + g[i + 1] * f[i + 1]), norms = std::hypot(g[i], g[i + 1]) * std::hypot(f[i], f[i + 1]);
        cos_sum += norms > 0 ? dot / norms : 1.0;
    }
    double mean_cos = cos_sum / (double)(g.size() / 2);
    Tensor near = toy::score(model, Prediction::Eps, s, grid, 20);
    Tensor step = near * (0.05f / std::max(1e-6f, max(abs(near)).item()));  // at most 0.05 per coordinate
    double before = toy::mean_nearest_distance(grid, data), after = toy::mean_nearest_distance(grid + step, data);
    std::printf("t = 800: mean cosine(score_theta, -x) = %.3f\n", mean_cos);
    std::printf("t = 20: mean distance of the grid to the data %.3f, after a small step along the score %.3f\n",
                before, after);
    nb::expect(mean_cos > 0.9, "at t = 800 the score points at the origin, as N(0, I)'s does");
    nb::expect(after < before, "at t = 20 a step along the score moves towards the data");

    // %% [markdown]
    // ## Sampling: ancestral DDPM and DDIM
    //
    // Both start from the same 1,000 draws of x_T ~ N(0, I). Ancestral sampling
    // (Algorithm 2, sigma_t^2 = beta_tilde_t) takes all 1,000 steps and adds fresh noise at
    // each; DDIM with eta = 0 takes 50 and adds none (notebook 13 shows it is an ODE solver).
    // A sample is good when it lies on the data and the data are covered: the mean
    // distance from each sample to its nearest data point, and from each data point to its
    // nearest sample. The floor is what a second draw of the data itself scores. The last
    // row: the same sampler with a second MLP trained for 3,000 steps only.

    // %%
    Generator short_init(1);
    toy::Mlp short_model(128, short_init);
    toy::TrainOptions short_opt;
    short_opt.steps = 3000;
    toy::train(short_model, s, data, short_opt);
    Tensor x_T = randn({1000, 2}, gen);
    std::vector<Tensor> ddpm_path, ddim_path;
    Generator sampler_gen(7);
    Tensor ddpm = toy::sample_ddpm(model, Prediction::Eps, s, x_T, sampler_gen, &ddpm_path, 50);
    Tensor ddim = toy::sample_ddim(model, Prediction::Eps, s, x_T, 50, &ddim_path);
    Generator short_sampler_gen(7);
    Tensor ddpm_short = toy::sample_ddpm(short_model, Prediction::Eps, s, x_T, short_sampler_gen);
    nb::show_scatter(NB, "samples.png",
                     {plot::points_xy(data.to_vector(), kGrey), plot::points_xy(ddpm.to_vector(), kRed),
                      plot::points_xy(ddim.to_vector(), kBlue)},
                     {}, {}, "The data (grey), 1,000 DDPM samples (red) and 1,000 DDIM-50 samples (blue)",
                     nb::plane_axes("samples"));
    Tensor reference = fresh;  // 1,000 points, as many as each sampler draws
    std::printf("%-22s %14s %14s\n", "", "to the data", "data to it");
    for (auto [name, pts] : {std::pair{"x_T (noise)", x_T}, std::pair{"DDPM, 1000 steps", ddpm},
                             std::pair{"DDIM, 50 steps", ddim}, std::pair{"a fresh draw of data", reference},
                             std::pair{"DDPM, 3,000-step MLP", ddpm_short}})
        std::printf("%-22s %14.4f %14.4f\n", name, toy::mean_nearest_distance(pts, data),
                    toy::mean_nearest_distance(data, pts));
    double floor = toy::mean_nearest_distance(reference, data);
    nb::expect(toy::mean_nearest_distance(ddpm, data) < 3 * floor, "DDPM samples lie on the data (within 3x the floor)");
    nb::expect(toy::mean_nearest_distance(ddim, data) < 3 * floor, "DDIM samples lie on the data (within 3x the floor)");
    nb::expect(toy::mean_nearest_distance(ddpm, data) < toy::mean_nearest_distance(ddpm_short, data),
               "8,000 training steps put the DDPM samples closer to the data than 3,000");

    // %% [markdown]
    // ## Paths from noise to data
    //
    // The same 8 starting points under each sampler. DDPM's paths (red) jitter: each
    // step adds noise, and the point wanders onto whichever part of the moon it is
    // nearest when the noise dies down. DDIM's (blue) are smooth curves: with eta = 0 each
    // step is a deterministic function of x_t, so a start point has one and only one end point.

    // %%
    std::vector<plot::Series> paths;
    for (auto [path, rgb] : {std::pair{&ddpm_path, kRed}, std::pair{&ddim_path, kBlue}})  // DDIM's drawn on top
        for (int64_t i = 0; i < 8; ++i) {
            std::vector<float> xy;
            for (const Tensor& x : *path) xy.push_back(x.at({i, 0})), xy.push_back(x.at({i, 1}));
            paths.push_back(plot::series_xy(xy, rgb));
        }
    std::vector<float> starts = x_T.narrow(0, 0, 8).to_vector();
    nb::show_scatter(NB, "trajectories.png",
                     {plot::points_xy(data.to_vector(), kGrey), plot::points_xy(starts, kGreen, 5)}, paths, {},
                     "8 paths from x_T (green squares) to x_0: DDPM (red, every 50th step) and DDIM-50 (blue)",
                     nb::plane_axes("trajectories"));
    Tensor ddim_again = toy::sample_ddim(model, Prediction::Eps, s, x_T, 50);
    Generator other_gen(8);
    Tensor ddpm_again = toy::sample_ddpm(model, Prediction::Eps, s, x_T, other_gen);
    std::printf("the same x_T again: DDIM max |difference| = %.2e, DDPM (other noise) max |difference| = %.3f\n",
                max(abs(ddim_again - ddim)).item(), max(abs(ddpm_again - ddpm)).item());
    nb::expect(max(abs(ddim_again - ddim)).item() == 0.0f, "DDIM (eta = 0) is deterministic: same x_T, same sample");
    return nb::failures();
}

// %% [markdown]
// What to take from the plane to the pixels: the network never sees the data set, only
// noisy points and the noise that made them, and from that alone it learns a field that
// points back at the data at every noise level. The samplers differ only in how they
// follow that field. `diffuse train toy --steps 8000` does all of the above as a command
// (`--data spiral` for the other set); notebook 12 asks what the loss has to do with likelihood, 13 turns
// the field into an ODE, and 14 asks whether eps is the best thing to predict.
