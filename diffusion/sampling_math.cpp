// diffusion/sampling_math.cpp: single reverse steps, DDPM and DDIM (see sampling_math.h).
#include "diffusion/sampling_math.h"

#include <cmath>
#include <utility>

#include "diffusion/forward_process.h"
#include "tensor/choice.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::diffusion {

namespace {

void check_same(const Tensor& a, const Tensor& b, const char* op, const char* what) {
    check(a.shape() == b.shape(), op, ": x_t ", a.shape(), " and ", what, " ", b.shape());
}

// x + sigma z, checking z when it matters.
Tensor add_noise(const Tensor& x, double sigma, const Tensor& z, const char* op) {
    if (sigma == 0.0) return x;
    check(z.defined(), op, ": sigma = ", sigma, " > 0 needs the noise z");
    check_same(x, z, op, "z");
    return x + z * (float)sigma;
}

}  // namespace

// (fixedlarge and fixedsmall: the names of the DDPM authors' code)
const Choice<Variance> kVariances[] = {{"beta", Variance::Beta},
                                       {"beta_tilde", Variance::BetaTilde},
                                       {"fixedlarge", Variance::Beta},
                                       {"fixedsmall", Variance::BetaTilde}};

Variance parse_variance(const std::string& name) { return parse_choice(name, kVariances, "variance"); }

double ddpm_sigma2(const Schedule& s, int64_t t, Variance v) {
    s.check_t(t, "ddpm_sigma2");
    // BEGIN SOLUTION ancestral-step: sigma_t^2 for the variance v (and at the last step)
    // STUB: (void)v;
    // STUB: fail("ddpm_sigma2: not implemented yet (assignment ancestral-step)");
    if (t == 0) return 0.0;  // z = 0 at the last step
    return v == Variance::Beta ? s.beta[t] : s.beta_tilde[t];
    // END SOLUTION ancestral-step
}

// eq. 4 solved for x_0 (times the reciprocal of sqrt(alpha_bar_t), one scalar for the batch)
Tensor predict_x0_from_eps(const Schedule& s, const Tensor& xt, int64_t t, const Tensor& eps) {
    s.check_t(t, "predict_x0_from_eps");
    check_same(xt, eps, "predict_x0_from_eps", "eps");
    return (xt - eps * (float)s.sqrt_one_minus_alpha_bar[t]) * (float)(1.0 / s.sqrt_alpha_bar[t]);
}

Tensor ddpm_step_algorithm2(const Schedule& s, const Tensor& xt, int64_t t, const Tensor& eps, Variance v,
                            const Tensor& z) {
    s.check_t(t, "ddpm_step_algorithm2");
    check_same(xt, eps, "ddpm_step_algorithm2", "eps");
    // BEGIN SOLUTION ancestral-step: mu_theta(x_t, t) from x_t and eps, then add sigma_t z (add_noise)
    // STUB: (void)v, (void)z;
    // STUB: fail("ddpm_step_algorithm2: not implemented yet (assignment ancestral-step)");
    double c_eps = s.beta[t] / s.sqrt_one_minus_alpha_bar[t];  // (1 - alpha_t) / sqrt(1 - alpha_bar_t)
    double c_out = 1.0 / std::sqrt(s.alpha[t]);                // 1 / sqrt(alpha_t)
    Tensor mean = (xt - eps * (float)c_eps) * (float)c_out;
    return add_noise(mean, std::sqrt(ddpm_sigma2(s, t, v)), z, "ddpm_step_algorithm2");
    // END SOLUTION ancestral-step
}

Tensor ddpm_step_clipped(const Schedule& s, const Tensor& xt, int64_t t, const Tensor& eps, Variance v, const Tensor& z,
                         bool clip) {
    s.check_t(t, "ddpm_step_clipped");
    check_same(xt, eps, "ddpm_step_clipped", "eps");
    Tensor x0 = predict_x0_from_eps(s, xt, t, eps);  // eq. 4 solved for x_0
    if (clip) x0 = clamp(x0, -1.0f, 1.0f);
    Tensor mean = x0 * (float)s.mu_coef_x0[t] + xt * (float)s.mu_coef_xt[t];  // eq. 7
    return add_noise(mean, std::sqrt(ddpm_sigma2(s, t, v)), z, "ddpm_step_clipped");
}

Tensor ddpm_step(const Schedule& s, const Tensor& xt, int64_t t, const Tensor& eps, Variance v, Generator& gen,
                 DdpmForm form) {
    Tensor z = t > 0 ? randn(xt.shape(), gen, 0.0f, 1.0f, xt.device()) : Tensor();
    return form == DdpmForm::Algorithm2 ? ddpm_step_algorithm2(s, xt, t, eps, v, z)
                                        : ddpm_step_clipped(s, xt, t, eps, v, z, true);
}

// DDIM eq. 16 (their alpha is our alpha_bar; alpha_bar_prev = 1 at t_prev = -1):
// BEGIN HIDE ddim-step
// sigma_t(eta) = eta sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_prev)
// END HIDE ddim-step
double ddim_sigma(const Schedule& s, int64_t t, int64_t t_prev, double eta) {
    s.check_t(t, "ddim_sigma");
    check(t_prev >= -1 && t_prev < t, "ddim_sigma: t_prev ", t_prev, " must be in [-1, t = ", t, ")");
    check(eta >= 0.0, "ddim_sigma: eta must be >= 0, got ", eta);
    // BEGIN SOLUTION ddim-step: sigma_t of eq. 16 (sigma itself, not sigma^2)
    // STUB: fail("ddim_sigma: not implemented yet (assignment ddim-step)");
    double ab = s.alpha_bar[t], ab_prev = s.alpha_bar_at(t_prev);
    // eq. 16
    return eta * std::sqrt((1.0 - ab_prev) / (1.0 - ab)) * std::sqrt(1.0 - ab / ab_prev);
    // END SOLUTION ddim-step
}

// BEGIN HIDE ddim-step
// STUB: // DDIM eq. 12: x_prev from x0_pred (clipped to [-1, 1] if clip_x0), eps and sigma_t z.
// STUB: // A clipped x0_pred comes with the eps that it and x_t imply (eq. 4 solved for eps).
// DDIM eq. 12: x_prev = sqrt(alpha_bar_prev) x0_pred + sqrt(1 - alpha_bar_prev - sigma_t^2) eps + sigma_t z,
// with x0_pred = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t). Clipping x0_pred to
// [-1, 1] changes it, so eps is re-derived from the clipped x0_pred and x_t (eq. 4 solved for
// eps, as Improved DDPM's DDIM sampler does): the pair must still add up to x_t, or the
// "direction pointing to x_t" points elsewhere. Keeping the network's eps beside a clipped
// x_0 drifts each step off the path; with guidance, whose x_0 often leaves [-1, 1], the
// samples stop being digits at all.
// END HIDE ddim-step
Tensor ddim_step(const Schedule& s, const Tensor& xt, int64_t t, int64_t t_prev, const Tensor& eps, double eta,
                 const Tensor& z, bool clip_x0) {
    check_same(xt, eps, "ddim_step", "eps");
    double sigma = ddim_sigma(s, t, t_prev, eta);
    // BEGIN SOLUTION ddim-step: x0_pred, then x_prev by eq. 12 (add_noise adds sigma_t z and checks z)
    // STUB: (void)sigma, (void)z, (void)clip_x0;
    // STUB: fail("ddim_step: not implemented yet (assignment ddim-step)");
    double ab_prev = s.alpha_bar_at(t_prev);
    Tensor x0 = predict_x0_from_eps(s, xt, t, eps);  // eq. 12's "predicted x_0"
    Tensor eps_used = eps;
    if (clip_x0) {
        x0 = clamp(x0, -1.0f, 1.0f);
        eps_used = (xt - x0 * (float)s.sqrt_alpha_bar[t]) * (float)(1.0 / s.sqrt_one_minus_alpha_bar[t]);  // eq. 4
    }
    double dir = std::sqrt(std::max(0.0, 1.0 - ab_prev - sigma * sigma));    // "direction pointing to x_t"
    Tensor x_prev = x0 * (float)std::sqrt(ab_prev) + eps_used * (float)dir;  // eq. 12
    return add_noise(x_prev, sigma, z, "ddim_step");
    // END SOLUTION ddim-step
}

Tensor ddim_step(const Schedule& s, const Tensor& xt, int64_t t, int64_t t_prev, const Tensor& eps, double eta,
                 Generator& gen) {
    double sigma = ddim_sigma(s, t, t_prev, eta);
    Tensor z = sigma > 0.0 ? randn(xt.shape(), gen, 0.0f, 1.0f, xt.device()) : Tensor();
    return ddim_step(s, xt, t, t_prev, eps, eta, z);
}

const Choice<Spacing> kSpacings[] = {
    {"leading", Spacing::Leading}, {"trailing", Spacing::Trailing}, {"linspace", Spacing::Linspace}};

Spacing parse_spacing(const std::string& name) { return parse_choice(name, kSpacings, "spacing"); }
std::string spacing_name(Spacing s) { return choice_name(s, kSpacings); }

namespace {

void check_counts(int64_t T, int64_t S, const char* op) {
    check(T >= 1 && S >= 1 && S <= T, op, ": need 1 <= S <= T, got S = ", S, ", T = ", T);
}

// num / den rounded to the nearest integer, halves to the even one (numpy's and Python's round)
int64_t round_half_even(int64_t num, int64_t den) {
    int64_t q = num / den, r2 = 2 * (num % den);
    return r2 > den || (r2 == den && q % 2 == 1) ? q + 1 : q;
}

}  // namespace

std::vector<int64_t> leading_timesteps(int64_t T, int64_t S) {
    check_counts(T, S, "leading_timesteps");
    std::vector<int64_t> ts(S);
    for (int64_t i = 0; i < S; ++i) ts[i] = i * T / S;  // floor(i T / S)
    return ts;
}

std::vector<int64_t> trailing_timesteps(int64_t T, int64_t S) {
    check_counts(T, S, "trailing_timesteps");
    std::vector<int64_t> ts(S);
    for (int64_t i = 0; i < S; ++i) ts[S - 1 - i] = round_half_even(T * (S - i), S) - 1;  // round(T (S - i) / S) - 1
    return ts;
}

std::vector<int64_t> linspace_timesteps(int64_t T, int64_t S) {
    check_counts(T, S, "linspace_timesteps");
    if (S == 1) return {T - 1};  // the one step must see x_T as it is: pure noise
    // round(i (T - 1) / (S - 1)), the stride summed in double as Improved DDPM's code sums
    // it: where i (T - 1) / (S - 1) is a half, that sum's last bit picks the same step theirs does
    double stride = (double)(T - 1) / (double)(S - 1), at = 0.0;
    std::vector<int64_t> ts(S);
    for (int64_t i = 0; i < S; ++i, at += stride) ts[i] = (int64_t)std::nearbyint(at);  // halves to even
    return ts;
}

std::vector<int64_t> spaced_timesteps(Spacing spacing, int64_t T, int64_t S) {
    switch (spacing) {
        case Spacing::Leading: return leading_timesteps(T, S);
        case Spacing::Trailing: return trailing_timesteps(T, S);
        case Spacing::Linspace: return linspace_timesteps(T, S);
    }
    fail("spaced_timesteps: unknown spacing");
}

std::vector<std::pair<int64_t, int64_t>> ddim_step_pairs(const std::vector<int64_t>& ts) {
    std::vector<std::pair<int64_t, int64_t>> pairs;
    for (int64_t i = (int64_t)ts.size() - 1; i >= 0; --i) pairs.push_back({ts[i], i > 0 ? ts[i - 1] : -1});
    return pairs;
}

}  // namespace td::diffusion
