// tests/test_optim.cpp: optimizers, gradient clipping, learning-rate schedules and EMA
// (nn/optim.h, nn/lr_schedule.h, nn/ema.h) against torch.optim and the formulas.
// Fixtures: tests/fixtures_nnio/{optim,clip,ema}/, made by tests/make_fixtures_nnio.py;
// the hyperparameters below repeat that script's OPTIM_CASES / CLIP_CASES / EMA_*.
#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>

#include "nn/ema.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "tests/helpers.h"

using namespace td;

namespace {

const std::string kDir = "tests/fixtures_nnio/";
const float kAtol = 1e-6f, kRtol = 1e-5f;
const int kParams = 3;  // shapes (3, 4), (4,), (2, 3, 2)

Tensor fixture(const std::string& rel) { return load_npy(kDir + rel); }
bool has_fixture(const std::string& rel) { return std::filesystem::exists(kDir + rel); }

using tdtest::contains;
using tdtest::error_of;

// Sets p.grad to g the way training does: backward of a loss whose gradient is g,
// here L = sum(p * g), so dL/dp = g exactly.
void set_grad(Tensor& p, const Tensor& g) {
    p.zero_grad();
    sum(p * g).backward();
}

std::vector<Tensor> load_params(const std::string& dir) {
    std::vector<Tensor> params;
    for (int i = 0; i < kParams; ++i)
        params.push_back(fixture(dir + "param" + std::to_string(i) + ".npy").requires_grad_());
    return params;
}

// The optimizers of make_fixtures_nnio.py's OPTIM_CASES.
std::unique_ptr<nn::Optimizer> make_optimizer(const std::string& c, const std::vector<Tensor>& params) {
    if (c == "sgd")
        return std::make_unique<nn::SGD>(params, nn::SGDOptions{.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f});
    if (c == "sgd_nesterov")
        return std::make_unique<nn::SGD>(params, nn::SGDOptions{.lr = 0.1f, .momentum = 0.9f, .nesterov = true});
    if (c == "sgd_plain") return std::make_unique<nn::SGD>(params, nn::SGDOptions{.lr = 0.1f});
    if (c == "adam") return std::make_unique<nn::Adam>(params, nn::AdamOptions{.lr = 0.1f, .weight_decay = 0.01f});
    if (c == "adam_skip") return std::make_unique<nn::Adam>(params, nn::AdamOptions{.lr = 0.1f});
    if (c == "adamw")
        return std::make_unique<nn::AdamW>(
            params, nn::AdamWOptions{.lr = 0.1f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.1f});
    FAIL("unknown case " << c);
    return nullptr;
}
const std::vector<std::string> kCases = {"sgd", "sgd_nesterov", "sgd_plain", "adam", "adam_skip", "adamw"};

// Gives each parameter the fixture's gradient for step s (none where the fixture has none).
void load_grads(const std::string& c, int s, std::vector<Tensor>& params) {
    for (int i = 0; i < kParams; ++i) {
        std::string g = "optim/" + c + "/grad" + std::to_string(s) + "_" + std::to_string(i) + ".npy";
        if (has_fixture(g)) set_grad(params[i], fixture(g));
        else params[i].zero_grad();
    }
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.to_vector() == b.to_vector();
}

// A module with three parameters, for the EMA and the named state dicts.
struct ThreeParams : nn::Module {
    ThreeParams() {
        register_parameter("w", zeros({3, 4}));
        register_parameter("b", zeros({4}));
        register_parameter("conv.k", zeros({2, 3, 2}));
    }
    void set(const std::vector<Tensor>& values) {
        NoGradGuard ng;
        auto params = named_parameters();
        for (size_t i = 0; i < params.size(); ++i) params[i].second.copy_(values[i]);
    }
};

}  // namespace

TEST_CASE("optim: 3 steps of SGD, Adam and AdamW match torch.optim") {
    for (const std::string& c : kCases) {
        INFO("case ", c);
        std::vector<Tensor> params = load_params("optim/" + c + "/");
        auto opt = make_optimizer(c, params);
        for (int s = 1; s <= 3; ++s) {
            load_grads(c, s, params);
            opt->step();
            for (int i = 0; i < kParams; ++i) {
                INFO("step ", s, ", parameter ", i);
                CHECK_CLOSE(params[i],
                            fixture("optim/" + c + "/after" + std::to_string(s) + "_" + std::to_string(i) + ".npy"),
                            kAtol, kRtol);
            }
        }
    }
}

TEST_CASE("optim: a parameter without a gradient is skipped, its step count included") {
    std::vector<Tensor> params = load_params("optim/adam_skip/");
    nn::Adam opt(params, {.lr = 0.1f});
    for (int s = 1; s <= 3; ++s) {
        load_grads("adam_skip", s, params);
        opt.step();
    }
    auto state = opt.state_dict();
    CHECK(state.at("state.0.step").to_vector_i64() == std::vector<int64_t>{3});
    CHECK(state.at("state.1.step").to_vector_i64() == std::vector<int64_t>{2});  // no grad at step 2
    CHECK(state.at("state.1.exp_avg").shape() == Shape{4});
}

TEST_CASE("optim: state_dict, saved and restored, continues bitwise like an uninterrupted run") {
    for (const std::string& c : kCases) {
        INFO("case ", c);
        // A: three steps straight.
        std::vector<Tensor> a = load_params("optim/" + c + "/");
        auto opt_a = make_optimizer(c, a);
        for (int s = 1; s <= 3; ++s) load_grads(c, s, a), opt_a->step();

        // B: one step, a checkpoint through .safetensors files, a fresh optimizer, two more steps.
        std::vector<Tensor> b = load_params("optim/" + c + "/");
        auto opt_b = make_optimizer(c, b);
        load_grads(c, 1, b);
        opt_b->step();
        std::string weights = tdtest::scratch("optim_" + c + "_weights.safetensors");
        std::string state = tdtest::scratch("optim_" + c + "_state.safetensors");
        std::map<std::string, Tensor> w;
        for (int i = 0; i < kParams; ++i) w[std::to_string(i)] = b[i];
        nn::save_safetensors(weights, w);
        nn::save_safetensors(state, opt_b->state_dict());
        opt_b.reset();
        b.clear();

        auto loaded = nn::load_safetensors(weights);
        for (int i = 0; i < kParams; ++i) b.push_back(loaded.at(std::to_string(i)).requires_grad_());
        auto opt_c = make_optimizer(c, b);
        opt_c->load_state_dict(nn::load_safetensors(state));
        for (int s = 2; s <= 3; ++s) load_grads(c, s, b), opt_c->step();
        for (int i = 0; i < kParams; ++i) CHECK(bitwise_equal(a[i], b[i]));
        auto sa = opt_a->state_dict(), sc = opt_c->state_dict();
        CHECK(sa.size() == sc.size());
        for (const auto& [k, t] : sa) {
            INFO(k);
            REQUIRE(sc.count(k));
            if (t.dtype() == DType::Int64) CHECK(t.to_vector_i64() == sc.at(k).to_vector_i64());
            else CHECK(bitwise_equal(t, sc.at(k)));
        }
    }
}

TEST_CASE("optim: state dict names follow the parameters' names; bad state is refused whole") {
    ThreeParams model;
    Generator gen(3);
    model.set({randn({3, 4}, gen), randn({4}, gen), randn({2, 3, 2}, gen)});
    nn::AdamW opt(model.named_parameters());
    CHECK(opt.state_dict().empty());  // nothing before the first step
    for (auto& [_, p] : model.named_parameters()) set_grad(p, ones_like(p));
    opt.step();
    auto state = opt.state_dict();
    CHECK(state.size() == 9);
    for (const char* k : {"state.w.step", "state.w.exp_avg", "state.w.exp_avg_sq", "state.conv.k.exp_avg_sq"})
        CHECK(state.count(k) == 1);

    auto before = opt.state_dict();
    auto bad = state;
    bad["state.w.momentum"] = ones({1});
    bad["state.b.exp_avg"] = ones({5});
    bad.erase("state.conv.k.exp_avg_sq");
    std::string msg = error_of([&] { opt.load_state_dict(bad); });
    CHECK(contains(msg, "AdamW"));
    CHECK(contains(msg, "unexpected: state.w.momentum"));
    CHECK(contains(msg, "shape mismatch: state.b.exp_avg"));
    CHECK(contains(msg, "incomplete state for 'conv.k': missing exp_avg_sq"));
    auto after = opt.state_dict();  // unchanged
    for (const auto& [k, t] : before)
        if (t.dtype() == DType::Float32) CHECK(bitwise_equal(t, after.at(k)));
}

TEST_CASE("optim: bad hyperparameters are refused") {
    std::vector<Tensor> p = {zeros({2}).requires_grad_()};
    CHECK(contains(error_of([&] { nn::SGD(p, {.lr = 0.1f, .nesterov = true}); }), "nesterov needs momentum"));
    CHECK(contains(error_of([&] { nn::Adam(p, {.beta1 = 1.0f}); }), "betas"));
    CHECK(contains(error_of([&] { nn::AdamW(p, {.lr = -1.0f}); }), "AdamW"));
    // AdamW's own options keep PyTorch's default weight decay when only lr is given.
    nn::AdamWOptions o{.lr = 2e-4f};
    CHECK(o.weight_decay == 1e-2f);
}

TEST_CASE("optim: the fused Adam / AdamW update is the equations written as tensor ops") {
    // Adam::step runs one fused kernel per parameter (Backend::adam_update); here the same
    // equations one tensor op per term, as nn/optim.cpp wrote them before the kernel existed.
    for (bool decoupled : {false, true}) {
        INFO((decoupled ? "AdamW" : "Adam (L2)"));
        const float lr = 0.05f, beta1 = 0.85f, beta2 = 0.995f, eps = 1e-7f, lambda = 0.1f;
        Generator gen(11);
        Tensor theta = randn({5, 7}, gen).requires_grad_();
        Tensor ref = theta.detach().clone(), m = zeros({5, 7}), v = zeros({5, 7});
        std::unique_ptr<nn::Optimizer> opt;
        if (decoupled)
            opt = std::make_unique<nn::AdamW>(std::vector<Tensor>{theta},
                                              nn::AdamWOptions{lr, beta1, beta2, eps, lambda});
        else
            opt =
                std::make_unique<nn::Adam>(std::vector<Tensor>{theta}, nn::AdamOptions{lr, beta1, beta2, eps, lambda});
        for (int t = 1; t <= 3; ++t) {
            // a transposed (non-contiguous) gradient: the optimizer makes it contiguous first
            Tensor g = randn({7, 5}, gen).transpose(0, 1);
            theta.impl()->grad = g.impl_ptr();
            opt->step();

            Tensor gt = g;
            if (decoupled) ref = ref * (1.0f - lr * lambda);  // theta <- theta - lr lambda theta
            else gt = g + ref * lambda;                       // g_t = grad + lambda theta
            m = m * beta1 + gt * (1.0f - beta1);              // m_t = beta1 m + (1 - beta1) g_t
            v = v * beta2 + gt * gt * (1.0f - beta2);         // v_t = beta2 v + (1 - beta2) g_t^2
            const double bc1 = 1.0 - std::pow((double)beta1, t), bc2 = 1.0 - std::pow((double)beta2, t);
            Tensor denom = sqrt(v) / (float)std::sqrt(bc2) + eps;
            ref = ref - m / denom * (float)(lr / bc1);
            INFO("step ", t);
            // equal up to the FMAs the compiler may form inside the fused loop (tensor/cpu/optim.cpp)
            CHECK_CLOSE(theta, ref, 1e-6f, 1e-6f);
            auto state = opt->state_dict();
            CHECK_CLOSE(state.at("state.0.exp_avg"), m, 1e-7f, 1e-6f);
            CHECK_CLOSE(state.at("state.0.exp_avg_sq"), v, 1e-7f, 1e-6f);
        }
    }
}

TEST_CASE("optim: clip_grad_norm matches torch.nn.utils.clip_grad_norm_") {
    for (const auto& [c, max_norm] :
         std::vector<std::pair<std::string, float>>{{"clipped", 1.0f}, {"unclipped", 100.0f}}) {
        INFO("case ", c);
        std::vector<Tensor> params;
        for (int i = 0; i < kParams; ++i) {
            Tensor g = fixture("clip/" + c + "/grad" + std::to_string(i) + ".npy");
            params.push_back(zeros(g.shape()).requires_grad_());
            set_grad(params.back(), g);
        }
        params.push_back(zeros({5}).requires_grad_());  // no grad: ignored
        float total = nn::clip_grad_norm(params, max_norm);
        CHECK_CLOSE(scalar_tensor(total), fixture("clip/" + c + "/total_norm.npy"), kAtol, kRtol);
        for (int i = 0; i < kParams; ++i)
            CHECK_CLOSE(params[i].grad(), fixture("clip/" + c + "/clipped" + std::to_string(i) + ".npy"), kAtol, kRtol);
        CHECK_FALSE(params.back().grad().defined());
    }
    // After clipping to max_norm the norm is max_norm (up to the 1e-6 in the denominator).
    std::vector<Tensor> p = {zeros({2}).requires_grad_()};
    set_grad(p[0], Tensor::from_vector({3.0f, 4.0f}, {2}));
    CHECK(nn::clip_grad_norm(p, 1.0f) == doctest::Approx(5.0f));
    CHECK(nn::clip_grad_norm(p, 1.0f) == doctest::Approx(1.0f).epsilon(1e-5));
}

TEST_CASE("lr_schedule: constant, linear warm-up and cosine at chosen steps") {
    CHECK(nn::constant_lr(1, 3e-4f) == 3e-4f);
    CHECK(nn::constant_lr(100000, 3e-4f) == 3e-4f);

    // lr(t) = base * min(1, t / warmup): the first step already moves
    CHECK(nn::linear_warmup_lr(1, 1e-3f, 100) == doctest::Approx(1e-5));
    CHECK(nn::linear_warmup_lr(50, 1e-3f, 100) == doctest::Approx(5e-4));
    CHECK(nn::linear_warmup_lr(100, 1e-3f, 100) == 1e-3f);
    CHECK(nn::linear_warmup_lr(5000, 1e-3f, 100) == 1e-3f);
    CHECK(nn::linear_warmup_lr(1, 1e-3f, 0) == 1e-3f);

    // cosine, warm-up 10, total 110: half-way through the decay (t = 60) lr is half of base
    CHECK(nn::cosine_lr(5, 1.0f, 10, 110) == doctest::Approx(0.5));
    CHECK(nn::cosine_lr(10, 1.0f, 10, 110) == 1.0f);
    CHECK(nn::cosine_lr(35, 1.0f, 10, 110) == doctest::Approx(0.5 * (1 + std::cos(M_PI / 4))));
    CHECK(nn::cosine_lr(60, 1.0f, 10, 110) == doctest::Approx(0.5));
    CHECK(nn::cosine_lr(110, 1.0f, 10, 110) == doctest::Approx(0.0));
    CHECK(nn::cosine_lr(500, 1.0f, 10, 110) == doctest::Approx(0.0));  // stays at min_lr after total
    CHECK(nn::cosine_lr(60, 1.0f, 10, 110, 0.1f) == doctest::Approx(0.55));
    CHECK(nn::cosine_lr(1, 1.0f, 0, 100) == doctest::Approx(0.5 * (1 + std::cos(M_PI / 100))));

    nn::LrSchedule sched{.kind = nn::LrKind::Cosine, .base_lr = 2e-4f, .warmup = 100, .total = 1100};
    CHECK(sched.at(600) == nn::cosine_lr(600, 2e-4f, 100, 1100));
    CHECK(nn::LrSchedule{.kind = nn::LrKind::Warmup, .base_lr = 1.0f, .warmup = 4}.at(2) == 0.5f);

    CHECK(contains(error_of([] { nn::linear_warmup_lr(0, 1.0f, 10); }), "steps count from 1"));
    CHECK(contains(error_of([] { nn::cosine_lr(5, 1.0f, 10, 10); }), "warmup < total"));
    CHECK(contains(error_of([] { nn::parse_lr_kind("cosin"); }),
                   "unknown lr schedule 'cosin' (constant, warmup, cosine)"));
    for (nn::LrKind k : {nn::LrKind::Constant, nn::LrKind::Warmup, nn::LrKind::Cosine})
        CHECK(nn::parse_lr_kind(nn::lr_kind_name(k)) == k);
}

TEST_CASE("ema: the average matches the fixture, with warm-up and with a fixed decay") {
    ThreeParams model;
    std::vector<Tensor> init;
    for (int i = 0; i < kParams; ++i) init.push_back(fixture("ema/param" + std::to_string(i) + ".npy"));
    model.set(init);
    nn::EMA ema(model, 0.999f);  // warm-up on
    nn::EMA fixed(model, 0.9f, /*warmup=*/false);
    const std::vector<std::string> names = {"w", "b", "conv.k"};
    for (int t = 1; t <= 4; ++t) {
        std::vector<Tensor> theta;
        for (int i = 0; i < kParams; ++i)
            theta.push_back(fixture("ema/theta" + std::to_string(t) + "_" + std::to_string(i) + ".npy"));
        model.set(theta);  // as if the optimizer had stepped
        ema.update(model);
        fixed.update(model);
        auto s = ema.state_dict(), f = fixed.state_dict();
        for (int i = 0; i < kParams; ++i) {
            INFO("update ", t, ", parameter ", names[i]);
            std::string suffix = std::to_string(t) + "_" + std::to_string(i) + ".npy";
            CHECK_CLOSE(s.at(names[i]), fixture("ema/shadow" + suffix), kAtol, kRtol);
            CHECK_CLOSE(f.at(names[i]), fixture("ema/shadow_fixed" + suffix), kAtol, kRtol);
        }
    }
    CHECK(ema.num_updates() == 4);
    // copy_to puts the averaged weights into a model
    ThreeParams other;
    ema.copy_to(other);
    CHECK(bitwise_equal(other.state_dict().at("conv.k"), ema.state_dict().at("conv.k")));
}

TEST_CASE("ema: one update is decay shadow + (1 - decay) theta, exact where the numbers are") {
    ThreeParams model;  // zeros: the shadow starts at 0
    nn::EMA ema(model, 0.75f, /*warmup=*/false);
    model.set({full({3, 4}, 4.0f), full({4}, -8.0f), full({2, 3, 2}, 1.0f)});
    ema.update(model);  // 0.75 * 0 + 0.25 * theta
    auto s = ema.state_dict();
    CHECK(s.at("w").to_vector() == std::vector<float>(12, 1.0f));
    CHECK(s.at("b").to_vector() == std::vector<float>(4, -2.0f));
    CHECK(s.at("conv.k").to_vector() == std::vector<float>(12, 0.25f));
    model.set({full({3, 4}, 8.0f), full({4}, 0.0f), full({2, 3, 2}, 1.0f)});
    ema.update(model);  // 0.75 * shadow + 0.25 * theta
    s = ema.state_dict();
    CHECK(s.at("w").to_vector() == std::vector<float>(12, 2.75f));
    CHECK(s.at("b").to_vector() == std::vector<float>(4, -1.5f));
    CHECK(s.at("conv.k").to_vector() == std::vector<float>(12, 0.4375f));
    CHECK(s.at("w").device() == Device::CPU);
}

TEST_CASE("ema: the warm-up formula, and why it matters") {
    ThreeParams model;
    nn::EMA ema(model, 0.9999f);
    // decay_t = min(decay, (1 + t) / (10 + t))
    CHECK(ema.decay_at(1) == doctest::Approx(2.0 / 11.0));
    CHECK(ema.decay_at(10) == doctest::Approx(11.0 / 20.0));
    CHECK(ema.decay_at(1000) == doctest::Approx(1001.0 / 1010.0));
    CHECK(ema.decay_at(10000000) == 0.9999f);
    CHECK(nn::EMA(model, 0.9999f, false).decay_at(1) == 0.9999f);

    // The trap: weights start at 0 (the "random init"), training moves them to 1 at once.
    // After 100 updates the warmed-up EMA is at 1 (the init's weight is 10! 101! / 110! = 2e-12);
    // a fixed 0.9999 is still 99% init: 1 - 0.9999^100 = 0.00995.
    nn::EMA warm(model, 0.9999f), cold(model, 0.9999f, false);
    model.set({ones({3, 4}), ones({4}), ones({2, 3, 2})});
    for (int t = 0; t < 100; ++t) warm.update(model), cold.update(model);
    CHECK(warm.state_dict().at("b").to_vector()[0] == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(cold.state_dict().at("b").to_vector()[0] == doctest::Approx(1.0 - std::pow(0.9999, 100)).epsilon(1e-4));
}

TEST_CASE("ema: save / load resumes the average, and the file loads straight into a model") {
    ThreeParams model;
    Generator gen(5);
    nn::EMA ema(model, 0.99f);
    for (int t = 0; t < 3; ++t) {
        model.set({randn({3, 4}, gen), randn({4}, gen), randn({2, 3, 2}, gen)});
        ema.update(model);
    }
    std::string path = tdtest::scratch("ema.safetensors");
    ema.save(path);

    ThreeParams sampler;  // the use: sample with the EMA weights
    nn::load_module(path, sampler);
    for (const auto& [n, t] : ema.state_dict()) CHECK(bitwise_equal(sampler.state_dict().at(n), t));

    nn::EMA resumed(ThreeParams(), 0.99f);
    resumed.load(path);
    CHECK(resumed.num_updates() == 3);
    model.set({randn({3, 4}, gen), randn({4}, gen), randn({2, 3, 2}, gen)});
    ema.update(model);
    resumed.update(model);
    for (const auto& [n, t] : ema.state_dict()) CHECK(bitwise_equal(resumed.state_dict().at(n), t));

    // A file that is not an EMA's, or a model that is not the EMA's: clear errors.
    std::string plain = tdtest::scratch("plain.safetensors");
    nn::save_module(plain, model);
    CHECK(contains(error_of([&] { resumed.load(plain); }), "ema_num_updates"));
    struct Other : nn::Module {
        Other() { register_parameter("w", zeros({2})); }
    } other;
    CHECK(contains(error_of([&] { ema.update(other); }), "differ in names or shapes"));
    CHECK(contains(error_of([&] { ema.load_state_dict({{"w", zeros({2})}}, 1); }), "missing: b"));
}
