// read after: 13
// %% [markdown]
// # 14 What the network predicts: eps, x_0 or v, and min-SNR weighting
//
// The same denoiser can output the noise eps, the clean x_0, or the velocity v; each is a
// reweighting of one loss across timesteps. Trained on the same budget on the 2-D toy,
// with each model's error per timestep plotted, and min-SNR-gamma weighting beside them.
//
// Given x_t, any one of eps, x_0 and v determines the other two (eq. 4 and Salimans & Ho
// 2022), so the choice does not change what the network can represent, only how its
// errors are weighed against each other during training. The engine's side:
// `training_target`, `model_eps`, `min_snr_weights` (`diffusion/forward_process.h`), and
// `diffuse train ddpm --prediction eps|x0|v --loss-weight none|min-snr`.

// %%
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "diffusion/forward_process.h"
#include "diffusion/toy2d.h"
#include "notebooks-cpp/notebook.h"

using namespace td;
using namespace td::diffusion;
namespace toy = td::diffusion::toy2d;

const char* NB = "14-what-to-predict";

// SNR(t) = alpha_bar_t / (1 - alpha_bar_t), as in notebook 04.
double snr(const Schedule& s, int64_t t) { return s.alpha_bar[t] / (1.0 - s.alpha_bar[t]); }

int main() {
    // %% [markdown]
    // ## Three targets, one error
    //
    // Hold x_t fixed and let the network be off by d_eps in its eps. Eq. 4,
    // `x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps`, then forces its x_0 to be off by
    // `d_x0 = -sqrt((1 - alpha_bar) / alpha_bar) d_eps`, and with `v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0`
    // its v by `d_v = d_eps / sqrt(alpha_bar)`. Squared:
    //
    // `||d_x0||^2 = ||d_eps||^2 / SNR`,   `||d_v||^2 = (1 + 1 / SNR) ||d_eps||^2`.
    //
    // So an x_0-loss is an eps-loss weighted by 1 / SNR (heavy at large t, where SNR is
    // tiny), a v-loss one weighted by 1 + 1 / SNR (never less than the eps-loss, and the same
    // at small t). Checked on random numbers, through the engine's conversions:

    // %%
    omp_set_num_threads(1);  // the toy's small matrices run faster on one thread (notebook 11)
    Schedule s = Schedule::named("linear", 1000);
    Generator gen(0);
    const int64_t B = 512;
    Tensor x0 = randn({B, 2}, gen), eps = randn({B, 2}, gen), t = randint(s.T, {B}, gen);
    Tensor xt = q_sample(s, x0, t, eps);
    Tensor eps_hat = eps + randn({B, 2}, gen) * 0.3f;       // some imperfect guess of eps
    Tensor x0_hat = predict_x0_from_eps(s, xt, t, eps_hat);  // the same guess, said as x_0
    Tensor v_hat = v_target(s, x0_hat, t, eps_hat);          // and as v
    std::vector<float> tv(B);
    for (int64_t i = 0; i < B; ++i) tv[i] = (float)(1.0 / snr(s, t.to_vector_i64()[i]));
    Tensor inv_snr = Tensor::from_vector(tv, {B, 1});  // 1 / SNR per row: (B, 1)
    auto sq_norm = [](const Tensor& d) { return sum(d * d, {1}, true); };  // ||d||^2 per row: (B, 1)
    Tensor de = sq_norm(eps_hat - eps), dx = sq_norm(x0_hat - x0), dv = sq_norm(v_hat - v_target(s, x0, t, eps));
    // each identity's gap relative to its right-hand side
    Tensor rhs_x0 = de * inv_snr, rhs_v = de * (1.0f + inv_snr);
    double gap_x0 = max(abs(dx - rhs_x0) / (rhs_x0 + 1e-12f)).item();
    double gap_v = max(abs(dv - rhs_v) / (rhs_v + 1e-12f)).item();
    std::printf("largest relative gap: x_0 identity %.1e, v identity %.1e\n", gap_x0, gap_v);
    nb::expect(gap_x0 < 1e-2 && gap_v < 1e-2, "||d_x0||^2 = ||d_eps||^2 / SNR and ||d_v||^2 = (1 + 1/SNR) ||d_eps||^2");

    // %% [markdown]
    // (The gaps are float32 rounding, and larger than 1e-7 because at t near 999, x_0 =
    // (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar) divides by sqrt(alpha_bar) = 0.006,
    // which is the whole story of why x_0-prediction and eps-prediction behave differently
    // there. Each gap is relative to the identity's own right-hand side: measured against
    // ||d_eps||^2 instead, the v gap at t = 999 would be 1 / SNR = 25,000 times larger,
    // rounding of a large number divided by a small one.)
    //
    // ## Min-SNR-gamma: one weighting for all three
    //
    // Hang et al. (2023) observe that L_simple in x_0 terms weights each t by SNR(t) (from the
    // identity above), which is enormous at small t: the easy, nearly clean steps dominate the
    // gradient. They clip it: weigh the x_0-loss by min(SNR, gamma), gamma = 5. Said in each
    // target's own loss, through the identities, the weight is min(SNR, gamma) / SNR for eps,
    // min(SNR, gamma) for x_0, and min(SNR, gamma) / (SNR + 1) for v (`min_snr_weights`), so
    // the three weighted losses are the same number for the same guess:

    // %%
    Tensor wl_eps = l_weighted(eps_hat, eps, min_snr_weights(s, t, Prediction::Eps));
    Tensor wl_x0 = l_weighted(x0_hat, x0, min_snr_weights(s, t, Prediction::X0));
    Tensor wl_v = l_weighted(v_hat, v_target(s, x0, t, eps), min_snr_weights(s, t, Prediction::V));
    std::printf("min-SNR loss of the same guess: as eps %.6f, as x_0 %.6f, as v %.6f\n", wl_eps.item(), wl_x0.item(),
                wl_v.item());
    nb::expect(std::abs(wl_eps.item() / wl_x0.item() - 1) < 1e-3 && std::abs(wl_v.item() / wl_x0.item() - 1) < 1e-3,
               "min-SNR weighting is one objective whichever target is predicted");

    // %% [markdown]
    // ## Four models, one budget
    //
    // The 2-D toy of notebook 11: the same MLP (128 hidden), the same 2,000 steps of batch
    // 256, the same seeds, trained on eps, on x_0, on v (each with its plain squared error),
    // and on eps with min-SNR-5. Then, per timestep, each model's error measured on one scale,
    // eps (its output converted with `model_eps`), on 2,000 noised points; and the DDPM samples
    // of each (mean distance from each sample to its nearest data point, and from each data
    // point to its nearest sample: the second catches a model that covers only part of the data).

    // %%
    Tensor data = toy::two_moons(2000, gen);
    struct Variant {
        const char* name;
        Prediction p;
        bool min_snr;
        unsigned rgb;
    };
    std::vector<Variant> variants = {{"eps", Prediction::Eps, false, 0x1f77b4},
                                     {"x_0", Prediction::X0, false, 0xd62728},
                                     {"v", Prediction::V, false, 0x2ca02c},
                                     {"eps, min-SNR-5", Prediction::Eps, true, 0xff7f0e}};
    std::vector<int64_t> probe_t;
    for (int64_t k = 0; k < 40; ++k) probe_t.push_back((int64_t)std::lround(std::pow(999.0, k / 39.0)));  // log-spaced, 1..999
    std::vector<float> probe_tf;  // the plots' x: log10(t), so that the small t get room
    for (int64_t t : probe_t) probe_tf.push_back((float)std::log10((double)t));
    std::vector<plot::Series> curves, ratio_curves;
    std::vector<std::vector<float>> errors;
    std::printf("%-16s %8s %14s %14s %14s %14s\n", "trained on", "seconds", "eps err t<=20", "eps err t>=500",
                "samples->data", "data->samples");
    for (const Variant& v : variants) {
        auto start = std::chrono::steady_clock::now();
        Generator init(1);
        toy::Mlp net(128, init);
        toy::TrainOptions o;
        o.steps = 2000, o.prediction = v.p, o.min_snr = v.min_snr, o.seed = 2;
        toy::train(net, s, data, o);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        Generator eval_gen(3);  // the same eps for every model
        std::vector<float> err = toy::eps_error_per_t(net, v.p, s, data, probe_t, eval_gen);
        Generator sample_gen(4);
        Tensor samples = toy::sample_ddpm(net, v.p, s, randn({1000, 2}, sample_gen), sample_gen);
        double low = 0, high = 0;
        int nl = 0, nh = 0;
        for (size_t k = 0; k < probe_t.size(); ++k) {
            if (probe_t[k] <= 20) low += err[k], ++nl;
            if (probe_t[k] >= 500) high += err[k], ++nh;
        }
        std::printf("%-16s %8.1f %14.4f %14.4f %14.4f %14.4f\n", v.name, secs, low / nl, high / nh,
                    toy::mean_nearest_distance(samples, data), toy::mean_nearest_distance(data, samples));
        curves.push_back({probe_tf, err, v.rgb});
        errors.push_back(err);
    }
    for (size_t i = 1; i < errors.size(); ++i) {
        std::vector<float> r;
        for (size_t k = 0; k < probe_t.size(); ++k) r.push_back(errors[i][k] / errors[0][k]);
        ratio_curves.push_back({probe_tf, r, variants[i].rgb});
    }
    ratio_curves.push_back({{probe_tf.front(), probe_tf.back()}, {1.0f, 1.0f}, 0x1f77b4});
    plot::Axes ax;
    ax.title = "eps error per timestep, 2,000 noised points", ax.xlabel = "log10(t)", ax.ylabel = "E||eps - eps_hat||^2 / 2 (log)";
    ax.log_y = true;
    nb::show_plot(NB, "error-per-t.png", curves,
                  "Each model's error in eps per timestep. Blue: eps; red: x_0; green: v; orange: eps with min-SNR-5.", ax);
    plot::Axes rx;
    rx.title = "error relative to the eps model", rx.xlabel = "log10(t)", rx.ylabel = "ratio (log)", rx.log_y = true;
    nb::show_plot(NB, "error-ratio.png", ratio_curves,
                  "The same errors divided by the eps model's (blue line at 1). Red: x_0; green: v; orange: min-SNR-5.", rx);
    double x0_small = 0, eps_small = 0;
    for (size_t k = 0; k < probe_t.size(); ++k)
        if (probe_t[k] <= 20) x0_small += errors[1][k], eps_small += errors[0][k];
    nb::expect(x0_small > eps_small, "at small t the x_0 model's eps is worse than the eps model's (its loss weighs them by 1/SNR)");
    return nb::failures();
}

// %% [markdown]
// How to read the two plots. Each training loss is the eps error reweighted per t, and
// each model ends up most accurate where its own weight is largest. The x_0 model's loss
// weighs small-t errors by 1/SNR, nearly 0 there, so it never learns to be precise on
// the nearly clean points: its eps error at small t is many times the eps model's (the red
// curve). The v model's weight 1 + 1/SNR is the eps weight plus the x_0 weight, so it sits
// between them, close to eps at small t and attentive at large t. Min-SNR-5 takes weight
// away from the small-t steps of the eps loss, where SNR > 5, and its curve rises there.
// Which matters for samples? The table's last two columns say less than the plots: at
// 2,000 steps none of the four is as close to the data as notebook 11's model after
// 8,000 (0.021 from samples to data), and one seed each does not rank them. The x_0
// model's samples lie nearest the data but cover it worst (its data-to-samples column),
// the other three are spread wider around the moons. On images, where the large-t steps
// decide the shapes, Hang et al. report that min-SNR reaches the same FID in several times
// fewer steps, and v-prediction (with min-SNR) is what later latent models train with; the
// demo model of notebooks 06 and 12 predicts v.
