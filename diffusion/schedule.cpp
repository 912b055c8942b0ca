// diffusion/schedule.cpp: betas and the derived per-step arrays (see schedule.h).
#include "diffusion/schedule.h"

#include <cmath>

#include "tensor/choice.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::diffusion {

namespace {

Tensor to_f32(const std::vector<double>& v) {
    std::vector<float> f(v.begin(), v.end());
    return Tensor::from_vector(f, {(int64_t)v.size()});
}

}  // namespace

std::vector<double> linear_betas(int64_t T, double beta_1, double beta_T) {
    check(T >= 1, "linear_betas: T must be >= 1, got ", T);
    std::vector<double> b(T);
    for (int64_t i = 0; i < T; ++i) b[i] = T == 1 ? beta_1 : beta_1 + (beta_T - beta_1) * (double)i / (double)(T - 1);
    return b;
}

// Improved DDPM eq. 17: alpha_bar_t = f(t) / f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2) for
// BEGIN HIDE cosine-schedule
// STUB: // paper t = 0..T; beta_t from alpha_bar (the assignment cosine-schedule), clipped to <= max_beta.
// paper t = 0..T; beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}, clipped to <= max_beta.
// END HIDE cosine-schedule
std::vector<double> cosine_betas(int64_t T, double s, double max_beta) {
    check(T >= 1, "cosine_betas: T must be >= 1, got ", T);
    // BEGIN SOLUTION cosine-schedule: b[i] = min(1 - f(t) / f(t - 1), max_beta) at code i = paper t - 1, i = 0..T-1
    // STUB: (void)s, (void)max_beta;
    // STUB: fail("cosine_betas: not implemented yet (assignment cosine-schedule)");
    const double pi = std::acos(-1.0);
    // eq. 17: f(t) = cos^2(((t/T + s)/(1 + s)) pi/2), paper t in 0..T
    auto f = [&](double t) {
        double c = std::cos((t / (double)T + s) / (1.0 + s) * pi / 2.0);
        return c * c;
    };
    std::vector<double> b(T);
    for (int64_t i = 0; i < T; ++i) {                           // code i = paper t = i + 1
        double beta = 1.0 - f((double)(i + 1)) / f((double)i);  // 1 - alpha_bar_t / alpha_bar_{t-1}
        b[i] = std::min(beta, max_beta);
    }
    return b;
    // END SOLUTION cosine-schedule
}

std::vector<double> scaled_linear_betas(int64_t T, double beta_1, double beta_T) {
    std::vector<double> r = linear_betas(T, std::sqrt(beta_1), std::sqrt(beta_T));
    for (double& x : r) x = x * x;
    return r;
}

const Choice<BetaSchedule> kBetaSchedules[] = {
    {"linear", BetaSchedule::Linear}, {"cosine", BetaSchedule::Cosine}, {"scaled_linear", BetaSchedule::ScaledLinear}};

BetaSchedule parse_beta_schedule(const std::string& name) { return parse_choice(name, kBetaSchedules, "schedule"); }
std::string beta_schedule_name(BetaSchedule s) { return choice_name(s, kBetaSchedules); }

std::vector<double> make_betas(BetaSchedule s, int64_t T) {
    switch (s) {
        case BetaSchedule::Linear: return linear_betas(T);
        case BetaSchedule::Cosine: return cosine_betas(T);
        case BetaSchedule::ScaledLinear: return scaled_linear_betas(T);
    }
    fail("make_betas: not a schedule");
}

Schedule::Schedule(std::vector<double> betas) : T((int64_t)betas.size()), beta(std::move(betas)) {
    check(T >= 1, "Schedule: no betas");
    for (int64_t t = 0; t < T; ++t)
        check(beta[t] > 0.0 && beta[t] < 1.0, "Schedule: beta[", t, "] = ", beta[t], " is not in (0, 1)");
    alpha.resize(T), alpha_bar.resize(T), alpha_bar_prev.resize(T), sqrt_alpha_bar.resize(T);
    sqrt_one_minus_alpha_bar.resize(T), beta_tilde.resize(T), mu_coef_x0.resize(T), mu_coef_xt.resize(T);
    double prod = 1.0;
    for (int64_t t = 0; t < T; ++t) {
        alpha[t] = 1.0 - beta[t];  // alpha_t = 1 - beta_t
        alpha_bar_prev[t] = prod;  // alpha_bar_{t-1} (alpha_bar_0 = 1)
        prod *= alpha[t];
        alpha_bar[t] = prod;  // alpha_bar_t = prod_{s<=t} alpha_s
        sqrt_alpha_bar[t] = std::sqrt(alpha_bar[t]);
        sqrt_one_minus_alpha_bar[t] = std::sqrt(1.0 - alpha_bar[t]);
        double denom = 1.0 - alpha_bar[t];
        beta_tilde[t] = (1.0 - alpha_bar_prev[t]) / denom * beta[t];              // eq. 7
        mu_coef_x0[t] = std::sqrt(alpha_bar_prev[t]) * beta[t] / denom;           // eq. 7
        mu_coef_xt[t] = std::sqrt(alpha[t]) * (1.0 - alpha_bar_prev[t]) / denom;  // eq. 7
    }
    f32 = {to_f32(beta),           to_f32(alpha),          to_f32(alpha_bar),
           to_f32(alpha_bar_prev), to_f32(sqrt_alpha_bar), to_f32(sqrt_one_minus_alpha_bar),
           to_f32(beta_tilde),     to_f32(mu_coef_x0),     to_f32(mu_coef_xt)};
}

Schedule Schedule::named(BetaSchedule s, int64_t T) { return Schedule(make_betas(s, T)); }
Schedule Schedule::named(const std::string& name, int64_t T) { return named(parse_beta_schedule(name), T); }

Schedule& Schedule::to(Device device) {
    for (Tensor* t : {&f32.beta, &f32.alpha, &f32.alpha_bar, &f32.alpha_bar_prev, &f32.sqrt_alpha_bar,
                      &f32.sqrt_one_minus_alpha_bar, &f32.beta_tilde, &f32.mu_coef_x0, &f32.mu_coef_xt})
        *t = t->to(device);
    return *this;
}

void Schedule::check_t(int64_t t, const char* op) const {
    check(t >= 0 && t < T, op, ": timestep ", t, " out of range [0, ", T, ")");
}

double Schedule::alpha_bar_at(int64_t t) const {
    if (t == -1) return 1.0;
    check_t(t, "alpha_bar_at");
    return alpha_bar[t];
}

Tensor Schedule::at(const Tensor& table, const Tensor& t, int64_t rank) {
    check(t.dtype() == DType::Int64 && t.dim() == 1, "Schedule::at: t must be a 1-D int64 tensor, got shape ",
          t.shape());
    check(rank >= 1, "Schedule::at: rank must be >= 1");
    int64_t n = table.size(0);
    for (int64_t v : t.to(Device::CPU).to_vector_i64())
        check(v >= 0 && v < n, "Schedule::at: timestep ", v, " out of range [0, ", n, ")");
    Shape shape(rank, 1);
    shape[0] = t.size(0);
    return index_select(table.to(t.device()), 0, t).reshape(shape);
}

}  // namespace td::diffusion
