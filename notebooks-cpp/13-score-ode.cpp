// read after: 12
// %% [markdown]
// # 13 The score view: Tweedie, Langevin, and DDIM as an ODE
//
// A noise predictor is a score model: eps_theta = -sqrt(1 - alpha_bar) * score (Tweedie);
// Langevin steps sample with a score; DDIM with eta = 0 is Euler's method on the
// probability-flow ODE, deterministic and invertible (a real digit encoded to x_T and back).
//
// Song et al. (2021, "Score-Based Generative Modeling through Stochastic Differential
// Equations") put diffusion models and score matching under one roof. This notebook
// checks the three facts that make the roof stand, on the 2-D toy of notebook 11 (where the
// true score of the noised data can be computed exactly) and on the demo model (`runs/demo`).

// %%
#include <omp.h>

#include <cmath>
#include <functional>
#include <cstdio>
#include <vector>

#include "diffusion/data/dataset.h"
#include "diffusion/forward_process.h"
#include "diffusion/model_file.h"
#include "diffusion/sampling_math.h"
#include "diffusion/toy2d.h"
#include "notebooks-cpp/notebook.h"

using namespace td;
using namespace td::diffusion;
namespace toy = td::diffusion::toy2d;

const char* NB = "13-score-ode";
const unsigned kGrey = 0xbbbbbb, kBlue = 0x1f77b4, kRed = 0xd62728, kGreen = 0x2ca02c;

// The noised empirical distribution of points x_i (N, 2) at t is a mixture,
// q_t(x) = 1/N sum_i N(x; sqrt(alpha_bar_t) x_i, (1 - alpha_bar_t) I).
// For one x: the posterior weights w_i = q(x_0 = x_i | x_t = x) (a softmax), from which
// both E[x_0 | x_t] = sum_i w_i x_i and the exact score follow.
struct MixturePosterior {
    double mean_x0[2];  // E[x_0 | x_t = x]
    double score[2];    // grad_x log q_t(x) = sum_i w_i (sqrt(alpha_bar) x_i - x) / (1 - alpha_bar)
    double log_q;       // log q_t(x), up to the constant log(2 pi (1 - alpha_bar)) (for finite differences)
};
MixturePosterior mixture(const std::vector<float>& xs, double ab, double x, double y) {
    size_t n = xs.size() / 2;
    double var = 1.0 - ab, sa = std::sqrt(ab), top = -INFINITY;
    std::vector<double> logw(n);
    for (size_t i = 0; i < n; ++i) {
        double dx = x - sa * xs[2 * i], dy = y - sa * xs[2 * i + 1];
        logw[i] = -(dx * dx + dy * dy) / (2 * var);
        top = std::max(top, logw[i]);
    }
    double z = 0;
    MixturePosterior p{};
    for (size_t i = 0; i < n; ++i) {
        double w = std::exp(logw[i] - top);
        z += w, p.mean_x0[0] += w * xs[2 * i], p.mean_x0[1] += w * xs[2 * i + 1];
    }
    p.mean_x0[0] /= z, p.mean_x0[1] /= z;
    p.score[0] = (sa * p.mean_x0[0] - x) / var, p.score[1] = (sa * p.mean_x0[1] - y) / var;
    p.log_q = top + std::log(z / (double)n);
    return p;
}

// DDIM's variables (their sec. 4.3): x_bar = x / sqrt(alpha_bar), sigma = sqrt((1 - alpha_bar) / alpha_bar).
double sigma_of(double alpha_bar) { return std::sqrt((1.0 - alpha_bar) / alpha_bar); }
// One Euler step of DDIM eq. 14, d x_bar = eps_theta(x, t) d sigma, from t to t_to (either
// direction), with the eps the caller computed at (x, t): x_bar_to = x_bar + (sigma_to - sigma) eps.
Tensor euler_step(const Schedule& s, const Tensor& x, int64_t t, int64_t t_to, const Tensor& eps) {
    double ab = s.alpha_bar_at(t), ab_to = s.alpha_bar_at(t_to);
    Tensor x_bar = x / (float)std::sqrt(ab);
    Tensor x_bar_to = x_bar + eps * (float)(sigma_of(ab_to) - sigma_of(ab));
    return x_bar_to * (float)std::sqrt(ab_to);
}

// The ODE run from data to noise (encode) or back (decode) over the ascending timesteps
// ts; eps_of(x, t) is the network. Encoding starts at x_0 (t = -1), decoding at ts.back().
using EpsFn = std::function<Tensor(const Tensor&, int64_t)>;
Tensor encode(const Schedule& s, const EpsFn& eps_of, Tensor x, const std::vector<int64_t>& ts) {
    int64_t t = -1;
    for (int64_t t_to : ts) {
        x = euler_step(s, x, t, t_to, eps_of(x, t < 0 ? t_to : t));  // at x_0 the net is asked at the first t
        t = t_to;
    }
    return x;
}
Tensor decode(const Schedule& s, const EpsFn& eps_of, Tensor x, const std::vector<int64_t>& ts) {
    for (auto [t, t_prev] : ddim_step_pairs(ts)) x = euler_step(s, x, t, t_prev, eps_of(x, t));
    return x;
}

int main() {
    // %% [markdown]
    // ## Tweedie: the best denoiser is the score
    //
    // For x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps, Tweedie's formula says the
    // posterior mean of the clean signal is the noisy one moved along the score:
    //
    // `E[x_0 | x_t] = (x_t + (1 - alpha_bar_t) grad log q_t(x_t)) / sqrt(alpha_bar_t)`.
    //
    // (Proof in one line: q_t(x) = E_{x_0}[N(x; sqrt(alpha_bar) x_0, (1 - alpha_bar) I)], and the
    // gradient of each Gaussian is itself times (sqrt(alpha_bar) x_0 - x) / (1 - alpha_bar); divide
    // by q_t and the weights become the posterior of x_0.) Solving eq. 4 for eps and taking
    // the same expectation, `E[eps | x_t] = -sqrt(1 - alpha_bar_t) grad log q_t(x_t)`. L_simple's
    // minimiser is E[eps | x_t], so a well-trained eps_theta is `-sqrt(1 - alpha_bar_t) * score`.
    //
    // On 2,000 points the noised data distribution is a mixture of 2,000 Gaussians, so
    // both sides can be computed exactly (`mixture` above): the posterior mean directly as
    // a weighted average of the data, the score by finite differences of log q_t.

    // %%
    // The toy's small matrices run faster on one thread (notebook 11); the UNet below gets
    // every core back.
    const int cores = omp_get_max_threads();
    omp_set_num_threads(1);
    Generator gen(0);
    Tensor data = toy::two_moons(2000, gen);
    std::vector<float> dv = data.to_vector();
    Schedule s = Schedule::named("linear", 1000);
    double worst = 0;
    for (int64_t t : {10, 100, 400}) {
        double ab = s.alpha_bar[t], h = 1e-4;
        Tensor probe = q_sample(s, data.narrow(0, 0, 50), Tensor::from_vector_i64(std::vector<int64_t>(50, t), {50}),
                                randn({50, 2}, gen));
        std::vector<float> pv = probe.to_vector();
        for (size_t i = 0; i < 50; ++i) {
            double x = pv[2 * i], y = pv[2 * i + 1];
            MixturePosterior p = mixture(dv, ab, x, y);
            double gx = (mixture(dv, ab, x + h, y).log_q - mixture(dv, ab, x - h, y).log_q) / (2 * h);
            double gy = (mixture(dv, ab, x, y + h).log_q - mixture(dv, ab, x, y - h).log_q) / (2 * h);
            double tw[2] = {(x + (1 - ab) * gx) / std::sqrt(ab), (y + (1 - ab) * gy) / std::sqrt(ab)};  // Tweedie
            worst = std::max({worst, std::abs(tw[0] - p.mean_x0[0]), std::abs(tw[1] - p.mean_x0[1])});
        }
    }
    std::printf("50 noisy points at each of t = 10, 100, 400: largest |Tweedie - E[x_0 | x_t]| = %.2e\n", worst);
    nb::expect(worst < 1e-3, "Tweedie's formula with a finite-difference score gives the posterior mean");

    // %% [markdown]
    // Now the network. Train notebook 11's MLP on these points (8,000 steps, as there)
    // and compare its eps_theta with `-sqrt(1 - alpha_bar_t) * score` of the exact mixture, on
    // noisy points at several t: the relative error `||eps_theta - eps*|| / ||eps*||` averaged over 500 points.

    // %%
    toy::Mlp model(128, gen);
    toy::TrainOptions topt;
    topt.steps = 8000;
    toy::train(model, s, data, topt);
    std::printf("%5s %16s\n", "t", "relative error");
    std::vector<float> rel_t, rel_err;
    for (int64_t t : {5, 20, 50, 100, 200, 400, 700, 999}) {
        Tensor probe = q_sample(s, data.narrow(0, 0, 500), Tensor::from_vector_i64(std::vector<int64_t>(500, t), {500}),
                                randn({500, 2}, gen));
        std::vector<float> pv = probe.to_vector(), ev = toy::predict_eps(model, Prediction::Eps, s, probe, t).to_vector();
        double sum = 0, ab = s.alpha_bar[t];
        for (size_t i = 0; i < 500; ++i) {
            MixturePosterior p = mixture(dv, ab, pv[2 * i], pv[2 * i + 1]);
            double ex = -std::sqrt(1 - ab) * p.score[0], ey = -std::sqrt(1 - ab) * p.score[1];
            sum += std::hypot(ev[2 * i] - ex, ev[2 * i + 1] - ey) / std::max(1e-9, std::hypot(ex, ey));
        }
        rel_t.push_back((float)t), rel_err.push_back((float)(sum / 500));
        std::printf("%5lld %16.3f\n", (long long)t, sum / 500);
    }
    nb::expect(rel_err[5] < 0.1 && rel_err[6] < 0.1 && rel_err[7] < 0.1,
               "at t = 400, 700 and 999 eps_theta is within 10% of -sqrt(1 - alpha_bar) * score");
    nb::expect(rel_err[0] > rel_err[5], "the agreement is worse at t = 5 than at t = 400");

    // %% [markdown]
    // The agreement is close from t = 400 on (at t = 999 both are near -x, and eps itself
    // is near x_t) and worsens as t shrinks, for two reasons. The smaller t, the sharper the
    // field the network has to draw: near the moons it turns around within a few tenths of a
    // unit at t = 100, within hundredths at t = 5, and a 128-wide MLP trained for half a minute
    // draws it only roughly. And at the smallest t the exact score of 2,000 points is a
    // field of 2,000 sharp wells (the mixture's components barely overlap), which a smooth
    // network neither can nor should learn: it learns the score of the *moons*, and that is
    // why it generalises.
    //
    // ## Langevin dynamics: sampling with a score alone
    //
    // With a score one can sample without a reverse process at all. Langevin dynamics,
    // `x <- x + (delta / 2) grad log p(x) + sqrt(delta) z`, z ~ N(0, I), leaves p invariant
    // and, run long enough, forgets where it started. Song & Ermon (2019) anneal it: a few
    // steps with the score of a very noisy p (which is smooth and reaches everywhere), then
    // less noisy ones. Below: 1,000 points started uniformly on the square, 40 steps at
    // each of t = 600, 300, 150, 60, 20, 5 with delta = 0.05 (1 - alpha_bar_t), using score_theta.

    // %%
    Tensor x = rand({1000, 2}, gen, -3.0f, 3.0f);
    Tensor start = x;
    for (int64_t t : {600, 300, 150, 60, 20, 5}) {
        float delta = (float)(0.05 * (1.0 - s.alpha_bar[t]));
        for (int k = 0; k < 40; ++k)
            x = x + toy::score(model, Prediction::Eps, s, x, t) * (delta / 2) + randn({1000, 2}, gen) * std::sqrt(delta);
    }
    nb::show_scatter(NB, "langevin.png",
                     {plot::points_xy(data.to_vector(), kGrey), plot::points_xy(start.to_vector(), 0xdddddd, 1),
                      plot::points_xy(x.to_vector(), kRed)},
                     {}, {}, "Annealed Langevin dynamics with the learned score: uniform start (light) to the red points",
                     nb::plane_axes("Langevin sampling"));
    double before = toy::mean_nearest_distance(start, data), after = toy::mean_nearest_distance(x, data);
    std::printf("mean distance to the nearest data point: start %.3f, after 240 Langevin steps %.3f\n", before, after);
    nb::expect(after < 0.25 * before, "Langevin steps with score_theta bring uniform points onto the data");

    // %% [markdown]
    // ## DDIM with eta = 0 is an ODE solver
    //
    // DDIM's step with sigma = 0 (eq. 12) is
    // `x_prev = sqrt(alpha_bar_prev) (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t) + sqrt(1 - alpha_bar_prev) eps`.
    // Divide by sqrt(alpha_bar_prev) and name `x_bar = x / sqrt(alpha_bar)` and
    // `sigma = sqrt((1 - alpha_bar) / alpha_bar)`: it becomes
    // `x_bar_prev = x_bar_t + (sigma_prev - sigma_t) eps_theta(x_t, t)`,
    // one Euler step of the ODE `d x_bar / d sigma = eps_theta` (DDIM eq. 14). Written with the
    // score (eps_theta = -sqrt(1 - alpha_bar) score) this is the probability-flow ODE of Song et al.
    // 2021, sec. 4.3: the deterministic process whose x_t has the same marginals q_t as the
    // noisy forward process. First, the engine's `ddim_step` against the Euler step:

    // %%
    omp_set_num_threads(cores);
    LoadedModel m = load_model("runs/demo/model.safetensors");
    const Schedule& ms = m.schedule;
    // The demo model predicts v (configs/mnist-demo.cfg); model_eps turns any output into eps.
    EpsFn unet_eps = [&](const Tensor& xt, int64_t t) {
        NoGradGuard ng;
        Tensor tt = Tensor::from_vector_i64(std::vector<int64_t>(xt.shape()[0], t), {xt.shape()[0]});
        return model_eps(m.info.prediction, ms, xt, tt, m.denoiser()(xt, tt));
    };
    Tensor xT = randn(m.noise_shape(4), gen);
    double step_gap = 0;
    for (auto [t, t_prev] : std::vector<std::pair<int64_t, int64_t>>{{999, 979}, {500, 480}, {19, -1}}) {
        Tensor eps = unet_eps(xT, t);
        step_gap = std::max(step_gap, (double)max(abs(ddim_step(ms, xT, t, t_prev, eps, 0.0, Tensor()) -
                                                     euler_step(ms, xT, t, t_prev, eps))).item());
    }
    std::printf("|ddim_step - Euler step| max over three steps: %.2e\n", step_gap);
    nb::expect(step_gap < 1e-3, "a DDIM step (eta = 0) is an Euler step of d x_bar / d sigma = eps_theta");

    // %% [markdown]
    // ## Deterministic and invertible: a digit to x_T and back
    //
    // An ODE can be run both ways. Euler steps *up* the sigma axis (`encode`) turn a real
    // held-out digit into an x_T; DDIM from that x_T (`decode`) should bring back the same
    // digit, up to the solver's error, which shrinks as the steps grow. Nothing here is
    // random: run twice, the same digit gives the same x_T. (The stochastic DDPM sampler
    // has no such map: each x_T leads to many x_0.)

    // %%
    Dataset test = load_dataset("mnist", "test");
    Tensor digits = test.images.narrow(0, 0, 4).contiguous();  // (4, 1, 28, 28)
    std::printf("%6s %14s %14s %20s\n", "steps", "x_T mean", "x_T std", "rms(x_0 - decoded)");
    std::vector<double> errors;
    Tensor latent, back;
    for (int64_t steps : {10, 50, 200}) {
        std::vector<int64_t> ts = trailing_timesteps(ms.T, steps);
        latent = encode(ms, unet_eps, digits, ts);
        back = decode(ms, unet_eps, latent, ts);
        double rms = std::sqrt(mean((back - digits) * (back - digits)).item());
        errors.push_back(rms);
        std::printf("%6lld %+14.3f %14.3f %20.4f\n", (long long)steps, mean(latent).item(),
                    std::sqrt(mean(latent * latent).item()), rms);
    }
    std::vector<int64_t> ts200 = trailing_timesteps(ms.T, 200);
    Tensor latent_again = encode(ms, unet_eps, digits, ts200);
    nb::show_grid(NB, "encode-decode.png", cat({digits, clamp(latent, -2.5f, 2.5f) / 2.5f, clamp(back, -1.0f, 1.0f)}, 0), 4,
                  "Top: four held-out digits. Middle: their x_T from 200 Euler steps up the ODE (scaled by 1/2.5). "
                  "Bottom: DDIM-200 from those x_T.", 3);
    std::printf("encoding twice: max |difference| = %.1e\n", max(abs(latent_again - latent)).item());
    nb::expect(max(abs(latent_again - latent)).item() == 0.0f, "the encoding is deterministic");
    nb::expect(errors[2] < errors[0] && errors[2] < 0.1, "with 200 steps the digit comes back (rms < 0.1), closer than with 10");

    // %% [markdown]
    // The encoded x_T looks like noise and has roughly its statistics (mean near 0, std near
    // 1), yet it is not a random draw: it is *the* x_T this model's ODE maps onto this digit.
    // The same holds in the plane, where the whole map can be drawn: the moons pushed up to
    // t = 999 (blue) fill a blob of about the prior's size (its covariance, printed below, is
    // near the identity but not equal to it: the map is only as good as the learned field
    // and the solver), and pulled back (red) they land on themselves, up to the solver's
    // error, which shrinks as the steps grow (Euler's method is first order).

    // %%
    omp_set_num_threads(1);
    EpsFn toy_eps = [&](const Tensor& xt, int64_t t) { return toy::predict_eps(model, Prediction::Eps, s, xt, t); };
    // 250 points of each moon (two_moons lists the upper moon's points first)
    Tensor pts = cat({data.narrow(0, 0, 250), data.narrow(0, 1000, 250)}, 0), z, pts_back;
    std::vector<double> toy_errors;
    for (int64_t steps : {200, 1000}) {
        std::vector<int64_t> ts = trailing_timesteps(s.T, steps);
        z = encode(s, toy_eps, pts, ts), pts_back = decode(s, toy_eps, z, ts);
        toy_errors.push_back(max(abs(pts_back - pts)).item());
    }
    nb::show_scatter(NB, "ode-map.png",
                     {plot::points_xy(z.to_vector(), kBlue), plot::points_xy(pts.to_vector(), kGreen, 3),
                      plot::points_xy(pts_back.to_vector(), kRed)},
                     {}, {}, "500 data points, 250 of each moon (green), their x_T under the ODE (blue), and decoded back (red, on the green)",
                     nb::plane_axes("encode and decode, 1,000 steps"));
    Tensor zc = z - mean(z, {0});
    Tensor cov = matmul(zc.transpose(0, 1), zc) / 499.0f;
    std::printf("x_T of the points: covariance [[%.3f %+.3f] [%+.3f %.3f]]\n", cov.at({0, 0}), cov.at({0, 1}),
                cov.at({1, 0}), cov.at({1, 1}));
    std::printf("decoded back: max |error| %.4f with 200 steps, %.4f with 1,000\n", toy_errors[0], toy_errors[1]);
    nb::expect(toy_errors[1] < toy_errors[0] && toy_errors[1] < 0.05,
               "with 1,000 steps the map in the plane is inverted to within 0.05, closer than with 200");
    return nb::failures();
}

// %% [markdown]
// Three views of one object. Tweedie makes a denoiser a score model; Langevin dynamics
// samples from a score; the probability-flow ODE turns the score into a deterministic map
// between noise and data, which DDIM discretises with Euler steps. The map is what makes
// DDIM inversion useful (edit an image by encoding it, changing x_T or the condition, and
// decoding), and it is also why DDIM's samples depend smoothly on x_T (notebook 06's
// interpolations).
