// tests/test_diffusion_math.cpp: the schedule, the forward process and single sampling
// steps against closed forms and golden numbers computed from the papers' equations.
// Timesteps are 0-based (code t = 0..T-1 is the paper's 1..T; diffusion/schedule.h).
#include <cmath>

#include "diffusion/forward_process.h"
#include "diffusion/sampling_math.h"
#include "diffusion/schedule.h"
#include "tests/helpers.h"

using namespace td;
using namespace td::diffusion;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    std::vector<float> x = a.to_vector(), y = b.to_vector();
    double m = 0;
    for (size_t i = 0; i < x.size(); ++i) m = std::max(m, (double)std::fabs(x[i] - y[i]));
    return m;
}

Tensor ts(std::vector<int64_t> v) { return Tensor::from_vector_i64(v, {(int64_t)v.size()}); }

}  // namespace

TEST_CASE("diffusion schedule: linear betas, first and last step, 0-based convention") {
    Schedule s = Schedule::named("linear", 1000);
    REQUIRE(s.T == 1000);
    // code t = 0 is paper t = 1: beta_1 = 1e-4, alpha_bar_prev = alpha_bar_0 = 1
    CHECK(s.beta[0] == doctest::Approx(1e-4).epsilon(1e-12));
    CHECK(s.alpha_bar_prev[0] == 1.0);
    CHECK(s.alpha_bar[0] == doctest::Approx(1.0 - 1e-4).epsilon(1e-12));
    CHECK(s.beta_tilde[0] == 0.0);  // (1 - alpha_bar_0) = 0
    // code t = 999 is paper t = T = 1000: beta_T = 0.02
    CHECK(s.beta[999] == doctest::Approx(0.02).epsilon(1e-12));
    CHECK(s.alpha_bar_prev[999] == doctest::Approx(s.alpha_bar[998]).epsilon(1e-15));
    CHECK(s.alpha_bar[999] == doctest::Approx(4.035e-5).epsilon(1e-3));  // well known: ~4.0e-5
    // alpha_bar strictly decreasing, products consistent
    for (int64_t t = 1; t < s.T; ++t) {
        REQUIRE(s.alpha_bar[t] < s.alpha_bar[t - 1]);
        REQUIRE(s.alpha_bar[t] == doctest::Approx(s.alpha_bar[t - 1] * s.alpha[t]).epsilon(1e-13));
    }
    // float32 tensors hold the same numbers
    CHECK(s.f32.alpha_bar.shape() == Shape{1000});
    CHECK(s.f32.beta_tilde.at({487}) == doctest::Approx(s.beta_tilde[487]).epsilon(1e-6));
    CHECK(s.alpha_bar_at(-1) == 1.0);
    CHECK_THROWS_AS(s.alpha_bar_at(1000), Error);
    CHECK_THROWS_AS(Schedule::named("quadratic", 10), Error);
}

TEST_CASE("diffusion schedule: golden beta_tilde, at 0-based code indices 487 and 999") {
    // The golden "t = 487 ~ 0.00979, t = 999 ~ 0.02" are at 0-based code indices (paper
    // t = 488 and t = 1000): index 487 gives 0.0097916, whereas index 486 (paper 487
    // read 1-based) gives 0.0097716, which does not round to 0.00979.
    Schedule s = Schedule::named("linear", 1000);
    CHECK(std::fabs(s.beta_tilde[487] - 0.00979) < 5e-6);    // 0.0097916
    CHECK(std::fabs(s.beta_tilde[486] - 0.00979) > 1.5e-5);  // 0.0097716  // the other convention misses
    CHECK(std::fabs(s.beta_tilde[999] - 0.02) < 5e-6);       // 0.0199999836
    // eq. 7 by hand at 487
    double bt = (1 - s.alpha_bar[486]) / (1 - s.alpha_bar[487]) * s.beta[487];
    CHECK(s.beta_tilde[487] == doctest::Approx(bt).epsilon(1e-14));
    // gather: (B) -> (B,1,1,1)
    Tensor g = Schedule::at(s.f32.beta_tilde, ts({487, 999, 0}));
    CHECK(g.shape() == Shape{3, 1, 1, 1});
    CHECK(std::fabs(g.at({0, 0, 0, 0}) - 0.0097916) < 1e-6);
    CHECK(std::fabs(g.at({1, 0, 0, 0}) - 0.0199999836) < 1e-6);
    CHECK(Schedule::at(s.f32.beta, ts({5}), 2).shape() == Shape{1, 1});
    CHECK_THROWS_AS(Schedule::at(s.f32.beta, ts({1000})), Error);
    CHECK_THROWS_AS(Schedule::at(s.f32.beta, ts({-1})), Error);
}

// BEGIN HIDE cosine-schedule
TEST_CASE("diffusion schedule: cosine (eq. 17) and scaled_linear") {
    const int64_t T = 1000;
    Schedule c = Schedule::named("cosine", T);
    const double pi = std::acos(-1.0), s0 = 0.008;
    auto f = [&](double t) {
        double v = std::cos((t / T + s0) / (1 + s0) * pi / 2);
        return v * v;
    };
    // alpha_bar_1 (code 0) close to 1 and equal to f(1)/f(0)
    CHECK(c.alpha_bar[0] > 0.9999);
    CHECK(c.alpha_bar[0] == doctest::Approx(f(1) / f(0)).epsilon(1e-12));
    // away from the clip, alpha_bar_t = f(t)/f(0) (paper t = code t + 1)
    CHECK(c.alpha_bar[499] == doctest::Approx(f(500) / f(0)).epsilon(1e-10));
    for (int64_t t = 1; t < T; ++t) REQUIRE(c.alpha_bar[t] < c.alpha_bar[t - 1]);
    // f(T) = cos^2(pi/2) = 0 would give beta_T = 1: clipped to 0.999
    CHECK(c.beta[T - 1] == 0.999);
    double mx = 0;
    for (double b : c.beta) mx = std::max(mx, b);
    CHECK(mx <= 0.999);
    CHECK(cosine_betas(T)[T - 2] < 0.999);  // only the tail is clipped

    Schedule sl = Schedule::named("scaled_linear", 1000);
    CHECK(sl.beta[0] == doctest::Approx(0.00085).epsilon(1e-12));
    CHECK(sl.beta[999] == doctest::Approx(0.012).epsilon(1e-12));
    // linear in sqrt(beta): the midpoint of sqrt is the mean of the ends' sqrt
    std::vector<double> b = scaled_linear_betas(3, 0.01, 0.04);
    CHECK(std::sqrt(b[1]) == doctest::Approx(0.15).epsilon(1e-12));
    CHECK(b[1] != doctest::Approx(0.025));  // not plain linear
}
// END HIDE cosine-schedule

// BEGIN HIDE q-sample
TEST_CASE("diffusion forward: q_sample with a fixed eps is the closed form (eq. 4)") {
    Schedule s = Schedule::named("linear", 1000);
    Generator gen(3);
    Tensor x0 = rand({3, 1, 4, 4}, gen, -1.0f, 1.0f), eps = randn({3, 1, 4, 4}, gen);
    Tensor t = ts({0, 487, 999});
    Tensor xt = q_sample(s, x0, t, eps);
    REQUIRE(xt.shape() == x0.shape());
    int64_t tv[3] = {0, 487, 999};
    for (int b = 0; b < 3; ++b)
        for (int i = 0; i < 4; ++i) {
            double want = std::sqrt(s.alpha_bar[tv[b]]) * x0.at({b, 0, i, 1}) +
                          std::sqrt(1 - s.alpha_bar[tv[b]]) * eps.at({b, 0, i, 1});
            CHECK(xt.at({b, 0, i, 1}) == doctest::Approx(want).epsilon(1e-5));
        }
    // statistics: at the last step x_t is ~N(0, 1) whatever x0; mean ~ sqrt(ab) x0
    Tensor big0 = full({4000}, 0.7f), e = randn({4000}, gen);
    Tensor tt = Tensor::from_vector_i64(std::vector<int64_t>(4000, 300), {4000});
    Tensor x = q_sample(s, big0.view({4000, 1}), tt, e.view({4000, 1}));
    CHECK(mean(x).item() == doctest::Approx(0.7 * std::sqrt(s.alpha_bar[300])).epsilon(0.05));
    CHECK(var(x).item() == doctest::Approx(1 - s.alpha_bar[300]).epsilon(0.06));
    CHECK_THROWS_AS(q_sample(s, x0, ts({1, 2}), eps), Error);
}
// END HIDE q-sample

TEST_CASE("diffusion forward: posterior (eqs. 6-7) from x0 and from eps agree") {
    Schedule s = Schedule::named("linear", 1000);
    Generator gen(5);
    Tensor x0 = rand({3, 2, 3, 3}, gen, -1.0f, 1.0f), eps = randn({3, 2, 3, 3}, gen);
    Tensor t = ts({1, 487, 999});
    Tensor xt = q_sample(s, x0, t, eps);
    // predict_x0_from_eps inverts eq. 4
    Tensor x0_hat = predict_x0_from_eps(s, xt, t, eps);
    CHECK(max_abs_diff(x0_hat, x0) < 1e-3);
    CHECK(max_abs_diff(predict_eps_from_x0(s, xt, t, x0), eps) < 1e-4);
    Posterior p = q_posterior(s, x0, xt, t);
    Posterior p2 = q_posterior(s, x0_hat, xt, t);
    CHECK(max_abs_diff(p.mean, p2.mean) < 1e-4);
    // the eps form of the same mean (DDPM eq. 11) = Algorithm 2 without noise
    for (int b = 0; b < 3; ++b) {
        int64_t tb = t.to_vector_i64()[b];
        Tensor xb = xt.narrow(0, b, 1), eb = eps.narrow(0, b, 1);
        Tensor alg2 = ddpm_step_algorithm2(s, xb, tb, eb, Variance::BetaTilde, zeros(xb.shape()));
        CHECK(max_abs_diff(alg2, p.mean.narrow(0, b, 1)) < 1e-4);
    }
    CHECK(p.variance.shape() == Shape{3, 1, 1, 1});
    CHECK(p.variance.at({1, 0, 0, 0}) == doctest::Approx(s.beta_tilde[487]).epsilon(1e-6));
    // closed-form mean at one element
    double want = s.mu_coef_x0[487] * x0.at({1, 1, 2, 0}) + s.mu_coef_xt[487] * xt.at({1, 1, 2, 0});
    CHECK(p.mean.at({1, 1, 2, 0}) == doctest::Approx(want).epsilon(1e-5));
}

TEST_CASE("diffusion forward: eps, x0 and v targets and their inverses round-trip") {
    Schedule s = Schedule::named("cosine", 1000);
    Generator gen(7);
    Tensor x0 = rand({4, 1, 2, 2}, gen, -1.0f, 1.0f), eps = randn({4, 1, 2, 2}, gen);
    Tensor t = ts({0, 250, 700, 998});
    Tensor xt = q_sample(s, x0, t, eps);
    Tensor v = v_target(s, x0, t, eps);
    // v = sqrt(ab) eps - sqrt(1 - ab) x0 by hand
    double ab = s.alpha_bar[700];
    CHECK(
        v.at({2, 0, 1, 1}) ==
        doctest::Approx(std::sqrt(ab) * eps.at({2, 0, 1, 1}) - std::sqrt(1 - ab) * x0.at({2, 0, 1, 1})).epsilon(1e-5));
    CHECK(max_abs_diff(predict_x0_from_v(s, xt, t, v), x0) < 1e-5);
    CHECK(max_abs_diff(predict_eps_from_v(s, xt, t, v), eps) < 1e-5);
    for (Prediction p : {Prediction::Eps, Prediction::X0, Prediction::V}) {
        Tensor target = training_target(p, s, x0, t, eps);
        CHECK(max_abs_diff(model_x0(p, s, xt, t, target), x0) < 2e-3);
        CHECK(max_abs_diff(model_eps(p, s, xt, t, target), eps) < 2e-3);
    }
    CHECK(parse_prediction("v") == Prediction::V);
    CHECK_THROWS_AS(parse_prediction("score"), Error);
    // L_simple (eq. 14): mean of squares
    Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2}), b = Tensor::from_vector({1, 0, 3, 0}, {2, 2});
    CHECK(l_simple(a, b).item() == doctest::Approx((4.0 + 16.0) / 4.0));
    CHECK(l_simple(eps, eps).item() == 0.0f);
    CHECK_THROWS_AS(l_simple(a, eps), Error);
}

TEST_CASE("diffusion sampling: DDIM eq. 16 golden variance and timestep sub-sequence") {
    Schedule s = Schedule::named("linear", 1000);
    // The golden 0.14771 is sigma^2 (not sigma = 0.38434) between 0-based code
    // indices t = 420 and t_prev = 400, eta = 1 (indices 419 -> 399 give 0.14735).
    double sigma = ddim_sigma(s, 420, 400, 1.0);
    CHECK(std::fabs(sigma * sigma - 0.14771) < 2e-5);  // 0.1477195
    CHECK(std::fabs(sigma - 0.38434) < 1e-5);
    double other = ddim_sigma(s, 419, 399, 1.0);
    CHECK(std::fabs(other * other - 0.14771) > 2e-4);
    CHECK(ddim_sigma(s, 420, 400, 0.5) == doctest::Approx(0.5 * sigma));
    CHECK(ddim_sigma(s, 420, 400, 0.0) == 0.0);
    // eta = 1 with consecutive steps is DDPM's beta_tilde (the paper's remark)
    double c = ddim_sigma(s, 487, 486, 1.0);
    CHECK(c * c == doctest::Approx(s.beta_tilde[487]).epsilon(1e-10));
    CHECK(ddim_sigma(s, 5, -1, 1.0) == 0.0);  // to x_0: alpha_bar_prev = 1
    CHECK_THROWS_AS(ddim_sigma(s, 400, 420, 1.0), Error);
}

TEST_CASE("diffusion sampling: spacing, the timesteps each rule keeps (golden lists)") {
    using V = std::vector<int64_t>;
    // leading (DDIM's code): floor(i T / S), from 0, never T - 1
    CHECK(leading_timesteps(1000, 50).front() == 0);
    CHECK(leading_timesteps(1000, 50)[1] == 20);
    CHECK(leading_timesteps(1000, 50).back() == 980);
    CHECK(leading_timesteps(10, 3) == V{0, 3, 6});
    CHECK(leading_timesteps(1000, 1) == V{0});
    // trailing (Lin et al. 2024, Table 2): round(T (S - i) / S) - 1; the lists are numpy's
    // np.round(np.arange(T, 0, -T / S)) - 1, reversed
    V t50 = trailing_timesteps(1000, 50);
    REQUIRE(t50.size() == 50);
    for (int64_t i = 0; i < 50; ++i) CHECK(t50[i] == 19 + 20 * i);  // 19, 39, ..., 999
    CHECK(trailing_timesteps(1000, 10) == V{99, 199, 299, 399, 499, 599, 699, 799, 899, 999});
    CHECK(trailing_timesteps(10, 3) == V{2, 6, 9});
    CHECK(trailing_timesteps(1000, 16) ==
          V{61, 124, 187, 249, 311, 374, 437, 499, 561, 624, 687, 749, 811, 874, 937, 999});
    CHECK(trailing_timesteps(1000, 1) == V{999});
    // linspace: Improved DDPM's space_timesteps(T, [S]) (improved_diffusion/respace.py), lists
    // from running it; round halves to even (11, 5: 2.5 -> 2, 7.5 -> 8), and its stride summed
    // in floats (22, 21: 10 x 1.05 sums to just over 10.5, so 11 where exact arithmetic gives 10)
    CHECK(linspace_timesteps(1000, 10) == V{0, 111, 222, 333, 444, 555, 666, 777, 888, 999});
    CHECK(linspace_timesteps(100, 10) == V{0, 11, 22, 33, 44, 55, 66, 77, 88, 99});
    CHECK(linspace_timesteps(10, 4) == V{0, 3, 6, 9});
    CHECK(linspace_timesteps(11, 5) == V{0, 2, 5, 8, 10});
    CHECK(linspace_timesteps(22, 21) == V{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21});
    CHECK(linspace_timesteps(1000, 25) == V{0,   42,  83,  125, 166, 208, 250, 291, 333, 375, 416, 458, 500,
                                            541, 583, 624, 666, 708, 749, 791, 832, 874, 916, 957, 999});
    CHECK(linspace_timesteps(1000, 50) == V{0,   20,  41,  61,  82,  102, 122, 143, 163, 183, 204, 224, 245,
                                            265, 285, 306, 326, 347, 367, 387, 408, 428, 449, 469, 489, 510,
                                            530, 550, 571, 591, 612, 632, 652, 673, 693, 714, 734, 754, 775,
                                            795, 816, 836, 856, 877, 897, 917, 938, 958, 979, 999});
    CHECK(linspace_timesteps(1000, 1) == V{999});  // the reference keeps 0 here, leaving x_T as noise
    // every rule: S distinct steps, ascending, all of 0..T-1 when S = T
    for (Spacing sp : {Spacing::Leading, Spacing::Trailing, Spacing::Linspace}) {
        CAPTURE(spacing_name(sp));
        CHECK(parse_spacing(spacing_name(sp)) == sp);
        CHECK(spaced_timesteps(sp, 7, 7) == V{0, 1, 2, 3, 4, 5, 6});
        for (int64_t T : {1, 7, 50, 1000})
            for (int64_t S = 1; S <= T; S += T / 7 + 1) {
                V ts = spaced_timesteps(sp, T, S);
                REQUIRE(ts.size() == (size_t)S);
                CHECK(ts.front() >= 0);
                CHECK(ts.back() <= T - 1);
                for (size_t i = 1; i < ts.size(); ++i) CHECK(ts[i] > ts[i - 1]);
                if (sp != Spacing::Leading) CHECK(ts.back() == T - 1);
            }
        CHECK_THROWS_AS(spaced_timesteps(sp, 10, 11), Error);
        CHECK_THROWS_AS(spaced_timesteps(sp, 10, 0), Error);
    }
    CHECK(tdtest::contains(tdtest::error_of([] { parse_spacing("uniform"); }), "(leading, trailing, linspace)"));
    auto pairs = ddim_step_pairs(trailing_timesteps(10, 3));
    REQUIRE(pairs.size() == 3);
    CHECK(pairs[0] == std::pair<int64_t, int64_t>{9, 6});
    CHECK(pairs[1] == std::pair<int64_t, int64_t>{6, 2});
    CHECK(pairs[2] == std::pair<int64_t, int64_t>{2, -1});  // the last step lands on x_0
}

TEST_CASE("diffusion sampling: DDIM eta = 0 with the true eps inverts q_sample exactly") {
    for (const char* name : {"linear", "cosine"}) {
        CAPTURE(name);
        Schedule s = Schedule::named(name, 1000);
        Generator gen(9);
        Tensor x0 = rand({2, 1, 5, 5}, gen, -1.0f, 1.0f), eps = randn({2, 1, 5, 5}, gen);
        for (auto [t, tp] : std::vector<std::pair<int64_t, int64_t>>{{999, 500}, {600, 599}, {300, 0}, {10, 3}}) {
            CAPTURE(t);
            CAPTURE(tp);
            Tensor xt = q_sample(s, x0, ts({t, t}), eps);
            Tensor xp = ddim_step(s, xt, t, tp, eps, 0.0, Tensor());
            Tensor want = q_sample(s, x0, ts({tp, tp}), eps);
            CHECK(max_abs_diff(xp, want) < (t == 999 && std::string(name) == "cosine" ? 5e-2 : 2e-4));
        }
        // a whole 50-step walk from the last step (linear: alpha_bar_999 ~ 4e-5) to t = -1
        int64_t t0 = 980;
        Tensor x = q_sample(s, x0, ts({t0, t0}), eps);
        for (auto [t, tp] : ddim_step_pairs(leading_timesteps(1000, 50))) x = ddim_step(s, x, t, tp, eps, 0.0, gen);
        CHECK(max_abs_diff(x, x0) < (std::string(name) == "cosine" ? 5e-3 : 2e-4));
    }
    // t_prev = -1 directly returns x0
    Schedule s = Schedule::named("linear", 1000);
    Generator gen(10);
    Tensor x0 = rand({1, 1, 3, 3}, gen, -1.0f, 1.0f), eps = randn({1, 1, 3, 3}, gen);
    Tensor xt = q_sample(s, x0, ts({700}), eps);
    CHECK(max_abs_diff(ddim_step(s, xt, 700, -1, eps, 0.0, Tensor()), x0) < 1e-4);
    CHECK(max_abs_diff(ddim_step(s, xt, 700, -1, eps, 1.0, Tensor()), x0) < 1e-4);  // sigma = 0 there
    // eta > 0 needs noise, and adds exactly sigma z
    CHECK_THROWS_AS(ddim_step(s, xt, 700, 600, eps, 1.0, Tensor()), Error);
    Tensor z = randn(xt.shape(), gen);
    double sg = ddim_sigma(s, 700, 600, 1.0);
    Tensor with = ddim_step(s, xt, 700, 600, eps, 1.0, z);
    double ab_p = s.alpha_bar[600];
    Tensor det = x0 * (float)std::sqrt(ab_p) + eps * (float)std::sqrt(1 - ab_p - sg * sg);
    CHECK(max_abs_diff(with, det + z * (float)sg) < 1e-4);
}

TEST_CASE("diffusion sampling: predict_x0_from_eps with one t is eq. 4 solved for x_0, as with a t per sample") {
    Schedule s = Schedule::named("linear", 1000);
    Generator gen(11);
    Tensor x0 = rand({2, 1, 3, 3}, gen, -1.0f, 1.0f), eps = randn({2, 1, 3, 3}, gen);
    for (int64_t t : {0, 420, 999}) {
        CAPTURE(t);
        Tensor xt = q_sample(s, x0, ts({t, t}), eps);
        CHECK(max_abs_diff(predict_x0_from_eps(s, xt, t, eps), predict_x0_from_eps(s, xt, ts({t, t}), eps)) < 1e-5);
        CHECK(max_abs_diff(predict_x0_from_eps(s, xt, t, eps), x0) < (t == 999 ? 1e-3 : 1e-4));
    }
    CHECK_THROWS_AS(predict_x0_from_eps(s, x0, 1000, eps), Error);  // t out of range
}

// BEGIN HIDE ancestral-step
TEST_CASE("diffusion sampling: ancestral step, both forms and both variances") {
    Schedule s = Schedule::named("linear", 1000);
    Generator gen(12);
    Tensor x0 = rand({1, 1, 4, 4}, gen, -0.9f, 0.9f), eps = randn({1, 1, 4, 4}, gen);
    Tensor z = randn({1, 1, 4, 4}, gen);
    for (int64_t t : {999, 487, 1}) {
        CAPTURE(t);
        Tensor xt = q_sample(s, x0, ts({t}), eps);
        // literal Algorithm 2 by hand
        double c = s.beta[t] / std::sqrt(1 - s.alpha_bar[t]), sig_small = std::sqrt(s.beta_tilde[t]);
        Tensor want = (xt - eps * (float)c) * (float)(1 / std::sqrt(s.alpha[t])) + z * (float)sig_small;
        CHECK(max_abs_diff(ddpm_step_algorithm2(s, xt, t, eps, Variance::BetaTilde, z), want) < 1e-4);
        Tensor large = ddpm_step_algorithm2(s, xt, t, eps, Variance::Beta, z);
        Tensor small = ddpm_step_algorithm2(s, xt, t, eps, Variance::BetaTilde, z);
        CHECK(max_abs_diff(large - small, z * (float)(std::sqrt(s.beta[t]) - sig_small)) < 1e-4);
        // the reference form with a true eps and |x0| < 1 (clip inactive) is the same step
        CHECK(max_abs_diff(ddpm_step_clipped(s, xt, t, eps, Variance::BetaTilde, z), small) < 2e-3);
        // and its mean is the true posterior mean
        CHECK(max_abs_diff(ddpm_step_clipped(s, xt, t, eps, Variance::Beta, zeros(xt.shape())),
                           posterior_mean(s, x0, xt, ts({t}))) < 2e-3);
    }
    // clipping matters when the predicted x0 leaves [-1, 1]
    Tensor xt = q_sample(s, x0, ts({999}), eps);
    Tensor wrong_eps = zeros(eps.shape());  // predicted x0 = x_t / sqrt(ab) ~ 157 x_t: far outside
    Tensor zero = zeros(xt.shape());
    Tensor clipped = ddpm_step_clipped(s, xt, 999, wrong_eps, Variance::BetaTilde, zero, true);
    Tensor unclipped = ddpm_step_clipped(s, xt, 999, wrong_eps, Variance::BetaTilde, zero, false);
    Tensor by_hand = clamp(xt * (float)(1 / s.sqrt_alpha_bar[999]), -1, 1) * (float)s.mu_coef_x0[999] +
                     xt * (float)s.mu_coef_xt[999];
    CHECK(max_abs_diff(clipped, by_hand) < 1e-5);
    CHECK(max_abs_diff(clipped, unclipped) > 1e-2);
    CHECK(max_abs_diff(unclipped, ddpm_step_algorithm2(s, xt, 999, wrong_eps, Variance::BetaTilde, zero)) < 1e-3);
    // sigma > 0 needs z; the last step (code t = 0, paper t = 1) uses z = 0
    CHECK_THROWS_AS(ddpm_step_clipped(s, xt, 999, wrong_eps, Variance::BetaTilde, Tensor()), Error);
    CHECK(ddpm_sigma2(s, 0, Variance::Beta) == 0.0);
    CHECK(ddpm_sigma2(s, 999, Variance::Beta) == doctest::Approx(0.02));
    CHECK(ddpm_sigma2(s, 999, Variance::BetaTilde) == doctest::Approx(s.beta_tilde[999]));
    Tensor x1 = q_sample(s, x0, ts({0}), eps);
    Tensor last = ddpm_step(s, x1, 0, eps, Variance::Beta, gen, DdpmForm::Algorithm2);
    CHECK(max_abs_diff(last, x0) < 1e-4);  // one noiseless step from t = 0 with the true eps lands on x0
    CHECK(max_abs_diff(ddpm_step(s, x1, 0, eps, Variance::Beta, gen), x0) < 1e-4);
    CHECK(parse_variance("fixedsmall") == Variance::BetaTilde);
    CHECK_THROWS_AS(parse_variance("learned"), Error);
}
// END HIDE ancestral-step
