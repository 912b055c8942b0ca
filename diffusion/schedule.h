// diffusion/schedule.h: the noise schedule beta_1..beta_T and every per-step number
// derived from it (DDPM, Ho et al. 2020; cosine: Nichol & Dhariwal 2021).
//
// THE TIMESTEP CONVENTION, once for all of diffusion/:
//   timesteps t are 0-based in code. Code t = 0..T-1 is the paper's t = 1..T, so
//   beta[0] is the paper's beta_1 (the smallest, 1e-4 for "linear") and beta[T-1] is
//   beta_T. alpha_bar_prev[t] is the paper's alpha_bar_{t-1}, with alpha_bar_prev[0] =
//   alpha_bar_0 = 1 (no noise yet). In DDIM, a "previous" step of t = -1 means "x_0":
//   alpha_bar = 1 there.
//   This is the convention of the reference code (and of diffusers), and it is the one
//   the golden numbers of tests/test_diffusion_math.cpp are stated in: beta_tilde at code
//   index 487 = 0.0097916 (index 486 gives 0.0097716), at code index 999 = 0.0199999.
//
// Every array exists twice: float64 vectors (exact, for scalar sampling steps and
// tests) and float32 tensors of shape (T) in `f32` (for per-sample gathers in
// training). Schedule::at(table, t, rank) gathers a (B) int64 t into (B, 1, ..., 1).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace td::diffusion {

// DDPM: beta linear from beta_1 = 1e-4 to beta_T = 0.02 over T steps.
std::vector<double> linear_betas(int64_t T, double beta_1 = 1e-4, double beta_T = 0.02);
// Improved DDPM eq. 17: alpha_bar(t) = f(t) / f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2);
// beta_t = 1 - alpha_bar(t) / alpha_bar(t-1) (paper t = 1..T), clipped to <= max_beta.
std::vector<double> cosine_betas(int64_t T, double s = 0.008, double max_beta = 0.999);
// LDM / Stable Diffusion "scaled_linear": sqrt(beta) linear from sqrt(beta_1) to sqrt(beta_T).
std::vector<double> scaled_linear_betas(int64_t T, double beta_1 = 0.00085, double beta_T = 0.012);
// The schedules by name: DDPM's linear, Improved DDPM's cosine, LDM's scaled_linear.
enum class BetaSchedule { Linear, Cosine, ScaledLinear };
// "linear", "cosine", "scaled_linear" (the model file's and the CLI's words); td::Error
// listing them for any other word.
BetaSchedule parse_beta_schedule(const std::string& name);
std::string beta_schedule_name(BetaSchedule s);
std::vector<double> make_betas(BetaSchedule s, int64_t T);

struct Schedule {
    // From any betas (each in (0, 1)); td::Error otherwise.
    explicit Schedule(std::vector<double> betas);
    // Schedule::named(BetaSchedule::Linear, 1000), or by its word: Schedule::named("linear", 1000)
    static Schedule named(BetaSchedule s, int64_t T);
    static Schedule named(const std::string& name, int64_t T);

    int64_t T = 0;
    // float64, index t = 0..T-1 (paper t = 1..T):
    std::vector<double> beta;                      // beta_t
    std::vector<double> alpha;                     // alpha_t = 1 - beta_t
    std::vector<double> alpha_bar;                 // alpha_bar_t = prod_{s<=t} alpha_s
    std::vector<double> alpha_bar_prev;            // alpha_bar_{t-1}, = 1 at t = 0
    std::vector<double> sqrt_alpha_bar;            // sqrt(alpha_bar_t)
    std::vector<double> sqrt_one_minus_alpha_bar;  // sqrt(1 - alpha_bar_t)
    std::vector<double> beta_tilde;                // eq. 7: (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t
    std::vector<double> mu_coef_x0;                // eq. 7: sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t)
    std::vector<double> mu_coef_xt;                // eq. 7: sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)

    // The same arrays as float32 tensors of shape (T).
    struct Tensors {
        Tensor beta, alpha, alpha_bar, alpha_bar_prev, sqrt_alpha_bar, sqrt_one_minus_alpha_bar, beta_tilde, mu_coef_x0,
            mu_coef_xt;
    } f32;
    // Puts the f32 tables on `device`, beside the batches they scale (the float64 arrays
    // stay on the host, where the samplers' per-step scalars are read). Returns *this.
    Schedule& to(Device device);

    // alpha_bar at t, with alpha_bar(-1) = 1 (x_0 itself; DDIM's final step).
    double alpha_bar_at(int64_t t) const;

    // Gathers table[t] for a (B) int64 t and reshapes to (B, 1, ..., 1) with `rank` dims,
    // ready to broadcast against a (B, C, H, W) batch, on t's device (a table elsewhere is
    // copied there first: T floats; Schedule::to saves that). t out of [0, T): td::Error.
    static Tensor at(const Tensor& table, const Tensor& t, int64_t rank = 4);
    // Checks 0 <= t < T (td::Error naming `op` otherwise).
    void check_t(int64_t t, const char* op) const;
};

}  // namespace td::diffusion
