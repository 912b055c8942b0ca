// tests/test_toy2d.cpp: diffusion on 2-D points (diffusion/toy2d.h): the data sets, the
// MLP's gradients, training, the samplers and the distance used to judge them.
#include <cmath>

#include "diffusion/toy2d.h"
#include "tests/helpers.h"

using namespace td;
using namespace td::diffusion;
namespace toy = td::diffusion::toy2d;

TEST_CASE("toy2d: the data sets are (n, 2), centred, of unit scale, and reproducible") {
    for (const char* name : {"moons", "spiral"}) {
        INFO(name);
        Generator a(3), b(3);
        Tensor x = toy::make_points(name, 4000, a), y = toy::make_points(name, 4000, b);
        REQUIRE(x.shape() == Shape{4000, 2});
        CHECK(max(abs(x - y)).item() == 0.0f);
        Tensor m = mean(x, {0});
        CHECK(std::abs(m.at({0})) < 0.3f);
        CHECK(std::abs(m.at({1})) < 0.3f);
        float spread = std::sqrt(mean(x * x).item());
        CHECK(spread > 0.5f);
        CHECK(spread < 1.5f);
    }
    // the two moons: the upper arc's points lie on a circle of radius 1.5 around (-0.75, -0.375)
    Generator g(0);
    Tensor moons = toy::two_moons(100, g, /*noise=*/0.0);
    for (int64_t i = 0; i < 50; ++i) {
        double dx = moons.at({i, 0}) + 0.75, dy = moons.at({i, 1}) + 0.375;
        CHECK(std::hypot(dx, dy) == doctest::Approx(1.5).epsilon(1e-5));
    }
    Generator h(0);
    CHECK_THROWS_WITH(toy::make_points("circles", 10, h), doctest::Contains("expected moons or spiral"));
}

TEST_CASE("toy2d: the MLP maps (B, 2) and t to (B, 2), and its gradients pass gradcheck") {
    Generator gen(1);
    toy::Mlp net(16, gen);
    Tensor x = randn({5, 2}, gen), t = Tensor::from_vector_i64({0, 1, 10, 500, 999}, {5});
    CHECK(net.forward(x, t).shape() == Shape{5, 2});
    CHECK(net.num_parameters() == (2 + 16) * 16 + 16 + 2 * (16 * 16 + 16) + 16 * 2 + 2);
    GradcheckResult r = gradcheck([&](const std::vector<Tensor>&) { return net.forward(x, t); }, net.parameters());
    INFO(r.message);
    CHECK(r.ok);
}

TEST_CASE("toy2d: training lowers the loss, and DDPM and DDIM samples land on the data" * doctest::test_suite("long")) {
    Schedule s = Schedule::named("linear", 1000);
    Generator gen(2);
    Tensor data = toy::two_moons(1000, gen);
    toy::Mlp net(64, gen);
    toy::TrainOptions o;
    o.steps = 3000;  // a few seconds
    std::vector<float> losses = toy::train(net, s, data, o);
    REQUIRE(losses.size() == 3000);
    double first = 0, last = 0;
    for (int i = 0; i < 100; ++i) first += losses[i], last += losses[2900 + i];
    CHECK(last < 0.8 * first);

    Tensor x_T = randn({300, 2}, gen);
    std::vector<Tensor> path;
    Generator sg(5);
    Tensor ddpm = toy::sample_ddpm(net, Prediction::Eps, s, x_T, sg, &path, 100);
    CHECK(path.size() == 1 + 10);  // x_T, then t = 900, 800, ..., 0
    Tensor ddim = toy::sample_ddim(net, Prediction::Eps, s, x_T, 20);
    CHECK(max(abs(toy::sample_ddim(net, Prediction::Eps, s, x_T, 20) - ddim)).item() ==
          0.0f);  // eta = 0: deterministic
    double noise = toy::mean_nearest_distance(x_T, data);
    CHECK(toy::mean_nearest_distance(ddpm, data) < 0.5 * noise);
    CHECK(toy::mean_nearest_distance(ddim, data) < 0.5 * noise);

    // the per-t error is finite and, at t = 999 where x_t is nearly eps itself, small
    Generator eg(6);
    std::vector<float> err = toy::eps_error_per_t(net, Prediction::Eps, s, data, {1, 500, 999}, eg);
    REQUIRE(err.size() == 3);
    for (float e : err) CHECK(std::isfinite(e));
    CHECK(err[2] < 0.1f);
}

TEST_CASE("toy2d: per-timestep weights must have T entries and do not mix with min-SNR") {
    Schedule s = Schedule::named("linear", 100);
    Generator gen(0);
    Tensor data = toy::two_moons(50, gen);
    toy::Mlp net(8, gen);
    toy::TrainOptions o;
    o.steps = 2;
    o.t_weights = std::vector<float>(99, 1.0f);
    CHECK_THROWS_WITH(toy::train(net, s, data, o), doctest::Contains("t_weights must have T = 100 entries, got 99"));
    o.t_weights = std::vector<float>(100, 1.0f);
    CHECK(toy::train(net, s, data, o).size() == 2);
    o.min_snr = true;
    CHECK_THROWS_WITH(toy::train(net, s, data, o), doctest::Contains("do not go together"));
}

TEST_CASE("toy2d: a trainer saved and loaded halfway takes the same steps as one never stopped") {
    Schedule s = Schedule::named("linear", 100);
    Generator gen(3);
    Tensor data = toy::two_moons(64, gen);
    toy::TrainOptions o;
    o.steps = 12, o.batch = 16;
    Generator g1(4), g2(4);
    toy::Mlp straight_net(8, g1), resumed_net(8, g2);  // the same initial weights
    std::vector<float> straight = toy::train(straight_net, s, data, o);

    std::string path = tdtest::scratch("toy2d-trainer.safetensors");
    std::vector<float> resumed;
    {
        toy::Trainer first(resumed_net, s, data, o);
        while (first.steps_done() < 5) resumed.push_back(first.step());
        first.save_checkpoint(path);
    }
    Generator g3(99);
    toy::Mlp fresh(8, g3);  // other weights: the checkpoint must bring them back
    toy::Trainer second(fresh, s, data, o);
    second.load_checkpoint(path);
    CHECK(second.steps_done() == 5);
    while (second.steps_done() < o.steps) resumed.push_back(second.step());
    CHECK(resumed == straight);  // bit for bit: weights, Adam's moments and the generator all restored

    toy::Mlp wider(16, g3);
    toy::Trainer other(wider, s, data, o);
    CHECK_THROWS_WITH(other.load_checkpoint(path), doctest::Contains("does not fit this model"));
}

TEST_CASE("toy2d: mean_nearest_distance and grid_points") {
    Tensor a = Tensor::from_vector({0, 0, 3, 4}, {2, 2}), b = Tensor::from_vector({0, 1}, {1, 2});
    // (0, 0) is 1 from (0, 1); (3, 4) is sqrt(9 + 9) from it
    CHECK(toy::mean_nearest_distance(a, b) == doctest::Approx((1.0 + std::sqrt(18.0)) / 2));
    CHECK(toy::mean_nearest_distance(b, a) == doctest::Approx(1.0));
    Tensor g = toy::grid_points(-1.0f, 1.0f, 3);
    REQUIRE(g.shape() == Shape{9, 2});
    CHECK(g.at({0, 0}) == -1.0f);
    CHECK(g.at({4, 0}) == 0.0f);
    CHECK(g.at({4, 1}) == 0.0f);
    CHECK(g.at({8, 1}) == 1.0f);
}
