// diffusion/forward_process.h: the forward (noising) process q and what training needs
// from it: q_sample (DDPM eq. 4), the posterior q(x_{t-1} | x_t, x_0) (eqs. 6-7), the
// conversions between x_0, eps and v, the training targets, and L_simple (eq. 14).
//
// t is a (B) int64 tensor of 0-based timesteps (code t = 0..T-1 is the paper's 1..T;
// see diffusion/schedule.h), one per batch element; x is
// (B, ...) and the per-t coefficients are gathered to (B, 1, ..., 1).
#pragma once
#include <string>

#include "diffusion/schedule.h"
#include "tensor/tensor.h"

namespace td::diffusion {

// Eq. 4: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
Tensor q_sample(const Schedule& s, const Tensor& x0, const Tensor& t, const Tensor& eps);

// Eqs. 6-7: q(x_{t-1} | x_t, x_0) = N(mu_tilde, beta_tilde I)
struct Posterior {
    Tensor mean;      // (B, ...): mu_tilde_t(x_t, x_0)
    Tensor variance;  // (B, 1, ..., 1): beta_tilde_t
};
// Eq. 7: mu_tilde_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0 + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t
Tensor posterior_mean(const Schedule& s, const Tensor& x0, const Tensor& xt, const Tensor& t);
// Eq. 7: beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t, as (B, 1, ..., 1) of rank `rank`
Tensor posterior_variance(const Schedule& s, const Tensor& t, int64_t rank = 4);
Posterior q_posterior(const Schedule& s, const Tensor& x0, const Tensor& xt, const Tensor& t);

// Eq. 4 solved for x_0: x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)
Tensor predict_x0_from_eps(const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& eps);
// Eq. 4 solved for eps: eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t)
Tensor predict_eps_from_x0(const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& x0);
// v (Salimans & Ho 2022): v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0
Tensor v_target(const Schedule& s, const Tensor& x0, const Tensor& t, const Tensor& eps);
// x_0 = sqrt(alpha_bar_t) x_t - sqrt(1 - alpha_bar_t) v
Tensor predict_x0_from_v(const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& v);
// eps = sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v
Tensor predict_eps_from_v(const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& v);

// What the network is trained to output.
enum class Prediction { Eps, X0, V };
Prediction parse_prediction(const std::string& name);  // "eps", "x0", "v"
std::string prediction_name(Prediction p);
// The regression target for a model predicting `p`, given x_0, t and the eps used in q_sample.
Tensor training_target(Prediction p, const Schedule& s, const Tensor& x0, const Tensor& t, const Tensor& eps);
// The model's output, whatever it predicts, turned into x_0 and into eps.
Tensor model_x0(Prediction p, const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& out);
Tensor model_eps(Prediction p, const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& out);

// Eq. 14 (Algorithm 1): L_simple = E || target - prediction ||^2, a mean over every element (0-d).
Tensor l_simple(const Tensor& prediction, const Tensor& target);

// Min-SNR-gamma weighting (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
// Weighting Strategy", eq. 8 and sec. 3.4): with SNR(t) = alpha_bar_t / (1 - alpha_bar_t),
// each sample's loss is weighted so that the easy, low-noise steps (huge SNR) stop
// dominating the gradient: eps target min(SNR, gamma) / SNR, x0 target min(SNR, gamma),
// v target min(SNR, gamma) / (SNR + 1). Returns (B) float32 weights for (B) int64 t.
Tensor min_snr_weights(const Schedule& s, const Tensor& t, Prediction p, double gamma = 5.0);
// sum_b w_b * mean over the elements of sample b of (target - prediction)^2, divided by B:
// L_simple with a weight per sample (w = 1 everywhere gives l_simple exactly).
Tensor l_weighted(const Tensor& prediction, const Tensor& target, const Tensor& weights);

}  // namespace td::diffusion
