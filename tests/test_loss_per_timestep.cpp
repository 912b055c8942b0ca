// tests/test_loss_per_timestep.cpp: the loss-per-timestep curve measures what it says,
// in each of its three spaces, and the same model gives the same curve.
#include "diffusion/loss_per_timestep.h"
#include "diffusion/unet.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"

using namespace td;
using namespace td::diffusion;

namespace {
LoadedModel untrained(Prediction p) {
    ModelInfo info = tdtest::tiny_ddpm(100);
    info.unet.dropout = 0.0f;
    info.prediction = p;
    auto unet = std::make_shared<UNet>(info.unet);
    unet->eval();
    return LoadedModel{info, unet, Schedule::named(info.schedule, info.T), nullptr, nullptr};
}
Tensor images() {
    Generator g(5);
    return rand({3, 1, 8, 8}, g, -1.0f, 1.0f);
}
}  // namespace

TEST_CASE("loss per timestep: the target's error is eq. 14 at that t, and converts to eps and x_0 exactly") {
    const std::vector<int64_t> ts = {0, 10, 50, 99};
    // An eps model's target is eps, an x_0 model's is x_0: one of the three columns repeats.
    for (LossAtT r : loss_per_timestep(untrained(Prediction::Eps), images(), ts)) CHECK(r.target_mse == r.eps_mse);
    for (LossAtT r : loss_per_timestep(untrained(Prediction::X0), images(), ts)) CHECK(r.target_mse == r.x0_mse);
    // v: eps - eps_theta = sqrt(alpha_bar) (v - v_theta) and x_0 - x0_theta = -sqrt(1 - alpha_bar) (v - v_theta).
    LoadedModel v = untrained(Prediction::V);
    for (LossAtT r : loss_per_timestep(v, images(), ts)) {
        const double ab = v.schedule.alpha_bar_at(r.t);
        INFO("t = " << r.t);
        CHECK(r.eps_mse == doctest::Approx(ab * r.target_mse).epsilon(1e-4));
        CHECK(r.x0_mse == doctest::Approx((1 - ab) * r.target_mse).epsilon(1e-4));
    }
}

TEST_CASE("loss per timestep: one eps for every t, so the same call gives the same curve") {
    LoadedModel m = untrained(Prediction::Eps);
    auto a = loss_per_timestep(m, images(), {5, 60}, 7), b = loss_per_timestep(m, images(), {5, 60}, 7);
    REQUIRE(a.size() == 2);
    CHECK(a[0].target_mse == b[0].target_mse);
    CHECK(a[1].x0_mse == b[1].x0_mse);
    CHECK(a[0].x0_mse < a[1].x0_mse);  // x_0 is easier to see through little noise than through much
    CHECK_THROWS_WITH_AS(loss_per_timestep(m, images(), {100}), doctest::Contains("outside 0..99"), Error);
}

TEST_CASE("evenly spaced timesteps keep both ends") {
    CHECK(evenly_spaced_timesteps(1000, 5) == std::vector<int64_t>{0, 250, 500, 749, 999});
    CHECK(evenly_spaced_timesteps(3, 10) == std::vector<int64_t>{0, 1, 2});
    CHECK_THROWS_AS(evenly_spaced_timesteps(1000, 1), Error);
}
