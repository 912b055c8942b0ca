// tests/test_cuda_optim.cpp: the fused optimizer and EMA updates and the Philox random
// numbers (tensor/backend.h's adam_update, ema_update, fill_random) on the GPU against the
// CPU reference (tensor/cpu/optim.cpp, tensor/cpu/random.cpp), and the CPU's random numbers
// pinned to the values they had before fill_random existed (checkpoints, fixtures and
// every seeded test depend on them).
//
// Tolerances on the GPU: Adam and the EMA agree with the CPU to about 1e-6 relative (nvcc
// and the host compiler fuse different multiply-adds into FMAs). Uniform numbers in [0, 1)
// are bit for bit the CPU's, in other ranges within 1 unit in the last place; normals
// within 1e-6 (CUDA's logf, sinf and cosf round differently from the C library's).
#include <bit>
#include <cmath>
#include <cstdint>

#include "nn/ema.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "tensor/backend.h"
#include "tests/helpers.h"

using namespace td;

using tdtest::skip_without_gpu;

namespace {

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }

// The largest distance between a and b in units in the last place (float32), 0 when bitwise equal.
int64_t max_ulps(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    int64_t worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        // float bit patterns, mapped so that consecutive floats are consecutive integers
        auto ordered = [](float f) {
            int64_t u = bits(f);
            return u & 0x80000000 ? -(u & 0x7fffffff) : u;
        };
        worst = std::max(worst, std::abs(ordered(a[i]) - ordered(b[i])));
    }
    return worst;
}

// Sets p.grad to g the way training does: L = sum(p * g), so dL/dp = g.
void set_grad(Tensor& p, const Tensor& g) {
    p.zero_grad();
    sum(p * g).backward();
}

// A module of three parameters, one of them larger than one grid of 8192 blocks x 256
// threads, so the kernels' grid-stride loops go round more than once.
struct Params3 : nn::Module {
    explicit Params3(uint64_t seed) {
        Generator gen(seed);
        register_parameter("w", randn({3, 4}, gen));
        register_parameter("b", randn({5}, gen));
        register_parameter("big", randn({1500, 1401}, gen));  // 2,101,500 > 2,097,152
    }
};

// Gradients for step s, the same on every device (made on the CPU, then moved).
std::vector<Tensor> grads_for(int s, const nn::NamedTensors& params) {
    Generator gen(100 + s);
    std::vector<Tensor> g;
    for (const auto& [_, p] : params) g.push_back(randn(p.shape(), gen));
    return g;
}

// Three steps of `make`'s optimizer over a fresh Params3 on `device`; returns the parameters
// and the optimizer state, on the CPU.
template <typename Make>
std::map<std::string, Tensor> three_steps(Device device, Make make) {
    Params3 model(1);
    model.to(device);
    auto opt = make(model.named_parameters());
    for (int s = 1; s <= 3; ++s) {
        nn::NamedTensors params = model.named_parameters();
        std::vector<Tensor> g = grads_for(s, params);
        for (size_t i = 0; i < params.size(); ++i) set_grad(params[i].second, g[i].to(device));
        opt->step();
    }
    std::map<std::string, Tensor> out = opt->state_dict();
    for (const auto& [n, t] : model.state_dict()) out["param." + n] = t.to(Device::CPU);
    return out;
}

}  // namespace

// ---- on the CPU, always: the reference the GPU must reproduce ----------------------------

TEST_CASE("random: rand and randn on the CPU give the numbers pinned before fill_random") {
    // Values computed with tensor/random.cpp as it was before the backend entry existed.
    Generator g(1234);
    g.set_state(1234, 5);
    std::vector<float> u = rand({7}, g, -2.0f, 3.0f).to_vector();
    const uint32_t u_bits[7] = {0x3ff966d2, 0xbf7fb132, 0x3fbcdf06, 0x3f6e199b, 0x403c4fca, 0x3fa94344, 0x3ffef1e2};
    for (int i = 0; i < 7; ++i) CHECK(bits(u[i]) == u_bits[i]);
    CHECK(g.offset() == 5 + 2);  // 7 numbers: 2 blocks of 4
    std::vector<float> n = randn({7}, g, 0.5f, 2.0f).to_vector();
    const uint32_t n_bits[7] = {0xc014dc78, 0x3fe3742a, 0xc004b42c, 0x3dc835f8, 0x3f8e4f6b, 0x403bacd9, 0x4031e0ce};
    for (int i = 0; i < 7; ++i) CHECK(bits(n[i]) == n_bits[i]);
    CHECK(u[0] == doctest::Approx(1.94845033));  // the first, readable

    Generator h(0);
    std::vector<float> s = randn({5}, h).to_vector();
    const uint32_t s_bits[5] = {0x3f3ce8b6, 0xbf303d2c, 0xbfa49c46, 0xbf807c29, 0xbfdde62d};
    for (int i = 0; i < 5; ++i) CHECK(bits(s[i]) == s_bits[i]);
    std::vector<float> r = rand({3}, h).to_vector();
    const uint32_t r_bits[3] = {0x3c9f5460, 0x3ea38e64, 0x3e10544c};
    for (int i = 0; i < 3; ++i) CHECK(bits(r[i]) == r_bits[i]);
    CHECK(h.offset() == 3);

    // a large tensor (filled by several threads): two elements and the sum of all
    Generator big(99);
    std::vector<float> b = randn({300001}, big).to_vector();
    CHECK(bits(b[123457]) == 0xbe922eaau);
    CHECK(bits(b[300000]) == 0x3fa10436u);
    double total = 0.0;
    for (float v : b) total += v;
    CHECK(total == -453.41028175931206);

    // an empty tensor takes no blocks
    CHECK(rand({0, 3}, h).numel() == 0);
    CHECK(h.offset() == 3);
}

// ---- on the GPU ------------------------------------------------------------------------

TEST_CASE("cuda: fused Adam and AdamW match the CPU's after 3 steps") {
    if (skip_without_gpu()) return;
    auto adam = [](nn::NamedTensors p) {
        return std::make_unique<nn::Adam>(p, nn::AdamOptions{.lr = 0.1f, .weight_decay = 0.01f});
    };
    auto adamw = [](nn::NamedTensors p) {
        return std::make_unique<nn::AdamW>(
            p, nn::AdamWOptions{.lr = 0.1f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.1f});
    };
    for (int which = 0; which < 2; ++which) {
        INFO((which == 0 ? "Adam (L2)" : "AdamW"));
        auto cpu = which == 0 ? three_steps(Device::CPU, adam) : three_steps(Device::CPU, adamw);
        auto gpu = which == 0 ? three_steps(Device::CUDA, adam) : three_steps(Device::CUDA, adamw);
        REQUIRE(cpu.size() == gpu.size());
        CHECK(cpu.count("state.big.exp_avg_sq"));
        for (const auto& [k, t] : cpu) {
            INFO(k);
            REQUIRE(gpu.count(k));
            CHECK(gpu.at(k).device() == Device::CPU);  // state_dict: host copies, ready for a file
            if (t.dtype() == DType::Int64) CHECK(gpu.at(k).to_vector_i64() == t.to_vector_i64());
            else CHECK_CLOSE(gpu.at(k), t, 1e-6f, 1e-6f);
        }
    }
}

TEST_CASE("cuda: Adam's state lives beside the parameters and resumes from a file bit for bit") {
    if (skip_without_gpu()) return;
    auto make = [](nn::NamedTensors p) { return std::make_unique<nn::AdamW>(p, nn::AdamWOptions{.lr = 0.05f}); };
    std::map<std::string, Tensor> straight = three_steps(Device::CUDA, make);

    // one step, the state through a .safetensors file, a fresh optimizer, two more steps
    Params3 model(1);
    model.to(Device::CUDA);
    auto opt = make(model.named_parameters());
    auto step = [&](nn::Optimizer& o, int s) {
        nn::NamedTensors params = model.named_parameters();
        std::vector<Tensor> g = grads_for(s, params);
        for (size_t i = 0; i < params.size(); ++i) set_grad(params[i].second, g[i].to(Device::CUDA));
        o.step();
    };
    step(*opt, 1);
    std::string path = tdtest::scratch("cuda_adamw_state.safetensors");
    nn::save_safetensors(path, opt->state_dict());
    auto resumed = make(model.named_parameters());
    resumed->load_state_dict(nn::load_safetensors(path));
    step(*resumed, 2);
    step(*resumed, 3);
    std::map<std::string, Tensor> state = resumed->state_dict();
    for (const auto& [n, t] : model.state_dict()) {
        CHECK(t.device() == Device::CUDA);
        state["param." + n] = t.to(Device::CPU);
    }
    REQUIRE(state.size() == straight.size());
    for (const auto& [k, t] : straight) {
        INFO(k);
        if (t.dtype() == DType::Int64) CHECK(state.at(k).to_vector_i64() == t.to_vector_i64());
        else CHECK(state.at(k).to_vector() == t.to_vector());
    }
}

TEST_CASE("cuda: ema_update and the EMA of a model on the GPU match the CPU's") {
    if (skip_without_gpu()) return;
    Params3 cpu_model(2), gpu_model(2);
    gpu_model.to(Device::CUDA);
    nn::EMA cpu_ema(cpu_model, 0.999f), gpu_ema(gpu_model, 0.999f);
    for (int t = 1; t <= 3; ++t) {
        nn::NamedTensors cp = cpu_model.named_parameters(), gp = gpu_model.named_parameters();
        std::vector<Tensor> step = grads_for(t, cp);  // "the optimizer moved the weights"
        NoGradGuard ng;
        for (size_t i = 0; i < cp.size(); ++i) {
            cp[i].second.add_(step[i], 0.1f);
            gp[i].second.add_(step[i].to(Device::CUDA), 0.1f);
        }
        cpu_ema.update(cpu_model);
        gpu_ema.update(gpu_model);
    }
    auto c = cpu_ema.state_dict(), g = gpu_ema.state_dict();
    for (const auto& [n, t] : c) {
        INFO(n);
        CHECK(g.at(n).device() == Device::CPU);
        CHECK_CLOSE(g.at(n), t, 1e-6f, 1e-6f);
    }
    // the backend entry itself, on a tensor whose length is no multiple of anything
    Generator gen(4);
    Tensor shadow = randn({1001}, gen), param = randn({1001}, gen);
    Tensor gpu_shadow = shadow.to(Device::CUDA);
    backend_for(Device::CUDA).ema_update(gpu_shadow, param.to(Device::CUDA), 0.75f);
    backend_for(Device::CPU).ema_update(shadow, param, 0.75f);
    CHECK_CLOSE(gpu_shadow.to(Device::CPU), shadow, 1e-6f, 1e-6f);
}

TEST_CASE("cuda: rand and randn on the GPU give the CPU's numbers") {
    if (skip_without_gpu()) return;
    // Lengths that end mid-block, one past a grid of 8192 x 256 threads x 4 numbers, and a
    // generator whose blocks cross 2^32 (the counter's high word) under a 64-bit seed.
    const int64_t sizes[] = {1, 7, 4097, 8192 * 256 * 4 + 5};
    const uint64_t seeds[] = {0, 0x123456789abcdefull};
    for (int64_t n : sizes)
        for (uint64_t seed : seeds) {
            INFO("n = " << n << ", seed = " << seed);
            uint64_t offset = (1ull << 32) - 3;
            Generator c(seed), g(seed);
            c.set_state(seed, offset);
            g.set_state(seed, offset);
            std::vector<float> uc = rand({n}, c).to_vector();
            Tensor ug = rand({n}, g, 0.0f, 1.0f, Device::CUDA);
            CHECK(ug.device() == Device::CUDA);
            CHECK(ug.to(Device::CPU).to_vector() == uc);  // [0, 1): bit for bit
            CHECK(max_ulps(rand({n}, g, -2.0f, 3.0f, Device::CUDA).to(Device::CPU).to_vector(),
                           rand({n}, c, -2.0f, 3.0f).to_vector()) <= 1);
            CHECK_CLOSE(randn({n}, g, 0.0f, 1.0f, Device::CUDA).to(Device::CPU), randn({n}, c), 1e-6f, 2e-6f);
            CHECK_CLOSE(randn({n}, g, 0.5f, 2.0f, Device::CUDA).to(Device::CPU), randn({n}, c, 0.5f, 2.0f), 1e-5f,
                        2e-6f);
            CHECK(g.offset() == c.offset());  // both generators moved on by the same blocks
        }
}
