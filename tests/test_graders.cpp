// tests/test_graders.cpp: the graded parts of the course assignments (docs/assignments.md).
//
// One test case per part, named "grade NAME: part": scripts/assignments.txt gives each
// part its points and its filter, and a student copy's grade.sh runs them one by one.
// The expected numbers are golden values, worked out once in float64 from the papers'
// equations outside the engine: a grader that recomputed the formula here would hand the
// student the answer (a student copy holds this file). Tolerances are float32's.
#include <cmath>
#include <memory>

#include "diffusion/forward_process.h"
#include "diffusion/guidance.h"
#include "diffusion/sampling_math.h"
#include "diffusion/schedule.h"
#include "diffusion/unet.h"
#include "diffusion/vae.h"
#include "nn/timestep_embedding.h"
#include "tests/helpers.h"

using namespace td;
using namespace td::diffusion;

namespace {

Tensor vec(std::vector<float> v, Shape shape) { return Tensor::from_vector(v, shape); }
Tensor steps(std::vector<int64_t> v) { return Tensor::from_vector_i64(v, {(int64_t)v.size()}); }
float max_abs(const Tensor& a) { return max(abs(a)).item(); }
float max_abs_diff(const Tensor& a, const Tensor& b) { return max_abs(a - b); }

// every element of `got` within atol + rtol |want| of the golden values
void check_golden(const Tensor& got, const std::vector<double>& want, double atol, double rtol) {
    std::vector<float> g = got.to_vector();
    REQUIRE(g.size() == want.size());
    for (size_t i = 0; i < g.size(); ++i) {
        CAPTURE(i);
        CHECK(std::fabs(g[i] - want[i]) <= atol + rtol * std::fabs(want[i]));
    }
}

}  // namespace

// ---- groupnorm-backward ----------------------------------------------------------------------

TEST_CASE("grade groupnorm-backward: an input that needs no gradient (dx undefined)") {
    Generator gen(21);
    Tensor x = randn({2, 4, 3, 3}, gen);  // needs no gradient: the backward must skip dx
    Tensor gamma = randn({4}, gen).requires_grad_(), beta = randn({4}, gen).requires_grad_();
    auto f = [&](const std::vector<Tensor>& in) { return group_norm(x, 2, in[0], in[1]); };
    GradcheckResult r = gradcheck(f, {gamma, beta});
    INFO(r.message);
    CHECK(r.ok);
    Tensor y = group_norm(x, 2, gamma, beta);
    sum(y * y).backward();
    CHECK(!x.grad().defined());
    CHECK(gamma.grad().defined());
}

// ---- cosine-schedule -------------------------------------------------------------------------

TEST_CASE("grade cosine-schedule: T betas, the first one") {
    std::vector<double> b = cosine_betas(1000);
    REQUIRE(b.size() == 1000);
    CHECK(b[0] == doctest::Approx(4.128422482196914e-05).epsilon(1e-9));
    for (double v : b) CHECK((v > 0.0 && v <= 0.999));
}

TEST_CASE("grade cosine-schedule: the closed form at several steps") {
    std::vector<double> b = cosine_betas(1000, 0.008, 0.999);
    REQUIRE(b.size() == 1000);
    CHECK(b[249] == doctest::Approx(0.0013214966366292824).epsilon(1e-9));
    CHECK(b[499] == doctest::Approx(0.0031458862304780677).epsilon(1e-9));
    CHECK(b[749] == doctest::Approx(0.007545707742043883).epsilon(1e-9));
    CHECK(b[998] == doctest::Approx(0.7499993929011166).epsilon(1e-9));
    // alpha_bar after 500 steps (the product of 1 - beta)
    CHECK(Schedule::named("cosine", 1000).alpha_bar[499] == doctest::Approx(0.4938435904406382).epsilon(1e-9));
}

TEST_CASE("grade cosine-schedule: the clipped tail") {
    CHECK(cosine_betas(1000)[999] == 0.999);
    std::vector<double> b = cosine_betas(1000, 0.008, 0.5);
    int clipped = 0;
    for (double v : b) clipped += v == 0.5;
    CHECK(clipped == 3);  // steps 997, 998, 999
    CHECK(b[996] < 0.5);
    CHECK(b[997] == 0.5);
}

TEST_CASE("grade cosine-schedule: another offset s and a short T") {
    std::vector<double> b = cosine_betas(10, 0.1, 0.999);
    const std::vector<double> want = {
        0.06034185494690025, 0.10123146843297093, 0.14469236959447684, 0.19294706656346383, 0.2491692018785422,
        0.3184154126891834,  0.4095995043816806,  0.5400509800479999,  0.7448319505439732,  0.999};
    REQUIRE(b.size() == want.size());
    for (size_t i = 0; i < b.size(); ++i) CHECK(b[i] == doctest::Approx(want[i]).epsilon(1e-9));
}

// ---- ddim-step -------------------------------------------------------------------------------

TEST_CASE("grade ddim-step: clip_x0, the noise term and the last step") {
    Schedule s = Schedule::named("linear", 1000);
    Tensor xt = vec({0.3f, -1.2f, 2.5f, 0.0f}, {1, 4}), eps = vec({0.5f, 0.1f, -1.0f, 2.0f}, {1, 4});
    Tensor z = vec({1.0f, -1.0f, 0.5f, 0.0f}, {1, 4});
    CHECK(ddim_sigma(s, 500, 400, 0.5) == doctest::Approx(0.36159817463570665).epsilon(1e-9));
    check_golden(ddim_step(s, xt, 500, 400, eps, 0.5, z, false),
                 {0.4884162336101471, -2.323753855994906, 4.817091389033791, -1.3856032813918453}, 1e-4, 1e-4);
    // clip_x0: the predicted x_0 of the last three elements leaves [-1, 1]; clipped, it comes
    // with the eps that it and x_t imply (eq. 4 solved for eps), as in Improved DDPM's sampler
    check_golden(ddim_step(s, xt, 500, 400, eps, 0.5, z, true),
                 {0.48841623361014724, -1.5899772386747317, 2.521931350318036, -0.20122226499795712}, 1e-4, 1e-4);
    // t_prev = -1: the step to x_0 is the (clipped) predicted x_0 itself
    check_golden(ddim_step(s, xt, 30, -1, eps, 0.0, Tensor(), true),
                 {0.24608764335642155, -1.0, 1.0, -0.22309184316183991}, 1e-4, 1e-4);
}

// ---- cfg -------------------------------------------------------------------------------------

TEST_CASE("grade cfg: the combination at w = 0, 1, 3, 7.5 and -0.5") {
    Tensor u = vec({1.0f, -2.0f, 0.5f}, {3}), c = vec({3.0f, 0.0f, 0.5f}, {3});
    check_golden(cfg_combine(u, c, 0.0f), {1.0, -2.0, 0.5}, 1e-6, 0.0);
    check_golden(cfg_combine(u, c, 1.0f), {3.0, 0.0, 0.5}, 1e-6, 0.0);
    check_golden(cfg_combine(u, c, 3.0f), {7.0, 4.0, 0.5}, 1e-6, 0.0);
    check_golden(cfg_combine(u, c, 7.5f), {16.0, 13.0, 0.5}, 1e-5, 0.0);
    check_golden(cfg_combine(u, c, -0.5f), {0.0, -3.0, 0.5}, 1e-6, 0.0);
}

TEST_CASE("grade cfg: gradients through the combination, and a shape mismatch") {
    Tensor u = vec({1.0f, -2.0f, 0.5f, 4.0f}, {2, 2}).requires_grad_();
    Tensor c = vec({3.0f, 0.0f, 0.5f, 1.0f}, {2, 2}).requires_grad_();
    Tensor g = cfg_combine(u, c, 3.0f);
    CHECK(g.shape() == Shape{2, 2});
    sum(g).backward();
    check_golden(u.grad(), {-2.0, -2.0, -2.0, -2.0}, 1e-6, 0.0);  // d/du of the combination at w = 3
    check_golden(c.grad(), {3.0, 3.0, 3.0, 3.0}, 1e-6, 0.0);
    tdtest::check_message(tdtest::error_of([&] { cfg_combine(u, ones({3}), 2.0f); }), {"cfg_combine", "[2, 2]", "[3]"});
}

// ---- q-sample (Algorithm 1) ------------------------------------------------------------------

TEST_CASE("grade q-sample: x_t at three steps (eq. 4)") {
    Schedule s = Schedule::named("linear", 1000);
    Tensor x0 = vec({0.5f, -0.25f, 1.0f}, {3, 1, 1, 1}), eps = vec({1.0f, -2.0f, 0.3f}, {3, 1, 1, 1});
    Tensor xt = q_sample(s, x0, steps({0, 487, 999}), eps);
    CHECK(xt.shape() == Shape{3, 1, 1, 1});
    check_golden(xt, {0.5099749993749682, -1.9837687710583454, 0.306346764281841}, 1e-5, 1e-5);
}

TEST_CASE("grade q-sample: shapes, broadcasting over a sample, and errors") {
    Schedule s = Schedule::named("linear", 1000);
    Generator gen(5);
    Tensor x0 = randn({2, 3, 4, 4}, gen), eps = randn({2, 3, 4, 4}, gen);
    Tensor xt = q_sample(s, x0, steps({999, 999}), eps);
    CHECK(xt.shape() == x0.shape());
    // one coefficient pair per sample: at t = 999 x_t is almost all noise
    CHECK(max_abs_diff(xt, eps) < 0.02f);
    Tensor x1 = q_sample(s, x0, steps({0, 0}), eps);
    CHECK(max_abs_diff(x1, x0) < 0.03f);  // at t = 0 almost all signal
    tdtest::check_message(tdtest::error_of([&] { q_sample(s, x0, steps({1, 2, 3}), eps); }), {"q_sample"});
    tdtest::check_message(tdtest::error_of([&] {
                              q_sample(s, x0, steps({1, 2}), randn({2, 3}, gen));
                          }),
                          {"q_sample", "[2, 3, 4, 4]", "[2, 3]"});
}

TEST_CASE("grade q-sample: the v target") {
    Schedule s = Schedule::named("linear", 1000);
    Tensor x0 = vec({0.5f, -0.25f, 1.0f}, {3, 1}), eps = vec({1.0f, -2.0f, 0.3f}, {3, 1});
    check_golden(v_target(s, x0, steps({0, 487, 999}), eps),
                 {0.9949499987499378, -0.35659705968174044, -0.9980739752212989}, 1e-5, 1e-5);
    check_golden(training_target(Prediction::V, s, x0, steps({0, 487, 999}), eps),
                 {0.9949499987499378, -0.35659705968174044, -0.9980739752212989}, 1e-5, 1e-5);
}

TEST_CASE("grade q-sample: the loss of Algorithm 1 and its gradient") {
    Tensor pred = vec({1.0f, 2.0f, 3.0f, 4.0f}, {2, 2}).requires_grad_(),
           target = vec({1.0f, 0.0f, 3.0f, 0.0f}, {2, 2});
    Tensor loss = l_simple(pred, target);
    CHECK(loss.numel() == 1);
    CHECK(loss.item() == doctest::Approx(5.0).epsilon(1e-6));
    loss.backward();
    check_golden(pred.grad(), {0.0, 1.0, 0.0, 2.0}, 1e-6, 0.0);
    tdtest::check_message(tdtest::error_of([&] { l_simple(pred, ones({4})); }), {"l_simple"});
}

// ---- ancestral-step (Algorithm 2) ------------------------------------------------------------

TEST_CASE("grade ancestral-step: sigma_t^2, both choices") {
    Schedule s = Schedule::named("linear", 1000);
    CHECK(ddpm_sigma2(s, 487, Variance::Beta) == doctest::Approx(0.009801001001001).epsilon(1e-9));
    CHECK(ddpm_sigma2(s, 487, Variance::BetaTilde) == doctest::Approx(0.009791571985690042).epsilon(1e-9));
    CHECK(ddpm_sigma2(s, 0, Variance::Beta) == 0.0);  // no noise on the last step
    CHECK(ddpm_sigma2(s, 0, Variance::BetaTilde) == 0.0);
}

TEST_CASE("grade ancestral-step: one step of Algorithm 2") {
    Schedule s = Schedule::named("linear", 1000);
    Tensor xt = vec({0.3f, -1.2f, 2.5f}, {1, 3}), eps = vec({0.5f, 0.1f, -1.0f}, {1, 3}),
           z = vec({1.0f, -1.0f, 0.5f}, {1, 3});
    check_golden(ddpm_step_algorithm2(s, xt, 487, eps, Variance::BetaTilde, z),
                 {0.395274943731187, -1.3059082507419755, 2.5721351841225544}, 1e-5, 1e-5);
    check_golden(ddpm_step_algorithm2(s, xt, 487, eps, Variance::Beta, z),
                 {0.39532257647718616, -1.3059558834879745, 2.572159000495554}, 1e-5, 1e-5);
}

TEST_CASE("grade ancestral-step: the last step, and a missing z") {
    Schedule s = Schedule::named("linear", 1000);
    Tensor xt = vec({0.3f, -1.2f, 2.5f}, {1, 3}), eps = vec({0.5f, 0.1f, -1.0f}, {1, 3});
    // t = 0 (paper t = 1): the mean alone, no z needed
    check_golden(ddpm_step_algorithm2(s, xt, 0, eps, Variance::Beta, Tensor()),
                 {0.2950147511063419, -1.2010600545041255, 2.5101255094132853}, 1e-5, 1e-5);
    tdtest::check_message(tdtest::error_of([&] { ddpm_step_algorithm2(s, xt, 487, eps, Variance::Beta, Tensor()); }),
                          {"needs the noise z"});
}

// ---- timestep-embedding ----------------------------------------------------------------------

TEST_CASE("grade timestep-embedding: sines then cosines, golden values") {
    Tensor e = nn::timestep_embedding(vec({0.0f, 1.0f, 250.0f}, {3}), 6);
    CHECK(e.shape() == Shape{3, 6});
    check_golden(e,
                 {0.0, 0.0, 0.0, 1.0, 1.0, 1.0,                                    // t = 0
                  0.8414709848078965, 0.00999983333416666, 9.999999983333325e-05,  // t = 1
                  0.5403023058681398, 0.9999500004166653, 0.999999995, -0.9705280195418053, 0.5984721441039575,
                  0.024997395914712308,  // t = 250
                  0.24098830528525864, -0.8011436155469329, 0.9996875162757026},
                 1e-5, 0.0);
}

TEST_CASE("grade timestep-embedding: an odd dim and another max_period") {
    Tensor e = nn::timestep_embedding(vec({3.0f}, {1}), 7, 100.0f);
    CHECK(e.shape() == Shape{1, 7});
    check_golden(e,
                 {0.1411200080598672, 0.2955202066613395, 0.029995500202495647, -0.9899924966004454, 0.9553364891256061,
                  0.9995500337489875, 0.0},
                 1e-5, 0.0);
}

TEST_CASE("grade timestep-embedding: the step conditions a ResBlock, one sample at a time") {
    Generator init(8);
    auto block = std::make_shared<ResBlock>(4, 4, 8, 2, 0.0f, nullptr, init);
    {
        NoGradGuard no_grad;
        block->conv2->weight.copy_(randn(block->conv2->weight.shape(), init) * 0.2f);  // not the identity at init
    }
    Generator gen(9);
    Tensor x = randn({2, 4, 3, 3}, gen), temb = randn({2, 8}, gen).requires_grad_();
    Tensor out = block->forward(x, temb);
    CHECK(out.shape() == Shape{2, 4, 3, 3});
    sum(out * out).backward();
    REQUIRE(temb.grad().defined());
    CHECK(max_abs(temb.grad()) > 1e-4f);  // the step reaches the output
    // a new step for sample 0 changes sample 0 only
    Tensor temb2 = temb.detach().clone();
    {
        NoGradGuard no_grad;
        temb2.narrow(0, 0, 1).copy_(randn({1, 8}, gen));
    }
    NoGradGuard no_grad;
    Tensor a = block->forward(x, temb.detach()), b = block->forward(x, temb2);
    CHECK(max_abs_diff(a.narrow(0, 0, 1), b.narrow(0, 0, 1)) > 1e-4f);
    CHECK(max_abs_diff(a.narrow(0, 1, 1), b.narrow(0, 1, 1)) == 0.0f);
}

// ---- vae-loss --------------------------------------------------------------------------------

TEST_CASE("grade vae-loss: the reparameterisation and its gradients") {
    Tensor mu = vec({0.0f, 1.5f, -0.7f}, {1, 3}).requires_grad_(),
           logvar = vec({0.0f, -1.0f, 1.2f}, {1, 3}).requires_grad_();
    Tensor eps = vec({1.0f, -0.5f, 2.0f}, {1, 3});
    Tensor z = VAE::reparameterise(mu, logvar, eps);
    check_golden(z, {1.0, 1.1967346701436834, 2.944237600781018}, 1e-5, 1e-5);
    sum(z).backward();
    check_golden(mu.grad(), {1.0, 1.0, 1.0}, 1e-6, 0.0);
    check_golden(logvar.grad(), {0.5, -0.15163266492815836, 1.8221188003905089}, 1e-5, 1e-5);
}

TEST_CASE("grade vae-loss: the KL in closed form, its reduction and gradients") {
    Tensor mu = vec({0.0f, 1.5f, -0.7f, 2.0f, 0.3f, -1.2f}, {1, 6}).requires_grad_();
    Tensor logvar = vec({0.0f, -1.0f, 1.2f, -3.0f, 0.5f, 2.0f}, {1, 6}).requires_grad_();
    Tensor kl = kl_to_standard_normal(mu, logvar);
    CHECK(kl.numel() == 1);
    CHECK(kl.item() == doctest::Approx(8.172780400953316).epsilon(1e-6));
    kl.backward();
    check_golden(mu.grad(), {0.0, 1.5, -0.7, 2.0, 0.3, -1.2}, 1e-5, 1e-5);
    check_golden(
        logvar.grad(),
        {0.0, -0.31606027941427883, 1.1600584613682736, -0.475106465816068, 0.3243606353500641, 3.194528049465325},
        1e-5, 1e-5);
    // summed over an image's elements, averaged over the batch: a second image with KL 0 halves it
    Tensor mu2 = cat({mu.detach(), zeros({1, 6})}, 0), lv2 = cat({logvar.detach(), zeros({1, 6})}, 0);
    CHECK(kl_to_standard_normal(mu2, lv2).item() == doctest::Approx(8.172780400953316 / 2).epsilon(1e-6));
}

TEST_CASE("grade vae-loss: the KL at the clamp bounds of logvar") {
    // from_moments clamps logvar to [-30, 20]: the KL must stay finite at both ends
    CHECK(kl_to_standard_normal(vec({0.0f}, {1, 1}), vec({-30.0f}, {1, 1})).item() ==
          doctest::Approx(14.500000000000046).epsilon(1e-6));
    CHECK(kl_to_standard_normal(vec({1.0f}, {1, 1}), vec({20.0f}, {1, 1})).item() ==
          doctest::Approx(242582587.70489514).epsilon(1e-6));
}
