// tests/test_attention_fused.cpp: the fused, flash-attention-style attention (tensor/backend.h's
// attention_forward / attention_backward; tensor/cpu/attention.cpp, cuda/attention.cu) against
// the composed op (batched matmuls + softmax, tensor/ops/attention.cpp), forward and all three
// gradients, on shapes that hit every edge of the tiling: Lq != Lk, dv != d, lengths and head
// dims that are not multiples of 32, B > 1, and a row whose largest score arrives late and
// large (the online max must rescale what it has summed).
//
// Tolerances on the CPU: atol 1e-5, rtol 1e-5. Both sides are float32 with different
// summation orders (Eigen's GEMM blocks vs the fused loops), O(1e-7) relative per dot product;
// the values here are O(1). On the GPU: atol 2e-5, rtol 2e-4 (expf and the warp's tree sums
// round differently from the CPU's std::exp and left-to-right loops).
//
// The op's own switch, TD_ATTENTION=fused, is read once per process, so it is tested in a
// child process: a test below runs this binary again with the variable set and only the
// "attention fused child" case selected.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tensor/backend.h"
#include "tensor/device.h"
#include "tests/helpers.h"

using namespace td;

namespace {

constexpr float kAtol = 1e-5f, kRtol = 1e-5f;        // CPU fused vs CPU composed
constexpr float kGpuAtol = 2e-5f, kGpuRtol = 2e-4f;  // CUDA fused vs CPU composed

struct Shape5 {
    int64_t B, Lq, Lk, d, dv;
};

// Inputs of one case: q (B, Lq, d), k (B, Lk, d), v (B, Lk, dv), and dO (B, Lq, dv) for the backward.
struct Inputs {
    Tensor q, k, v, dout;
};
Inputs make_inputs(const Shape5& s, uint64_t seed) {
    Generator gen(seed);
    return {randn({s.B, s.Lq, s.d}, gen), randn({s.B, s.Lk, s.d}, gen), randn({s.B, s.Lk, s.dv}, gen),
            randn({s.B, s.Lq, s.dv}, gen)};
}

// The result of attention, forward and backward: out and the gradients of sum(out * dO).
struct Result {
    Tensor out, dq, dk, dv;
};

// The composed path: the op (on the CPU its default), backward through autograd.
Result composed(const Inputs& in) {
    Tensor q = in.q.detach().requires_grad_(), k = in.k.detach().requires_grad_(), v = in.v.detach().requires_grad_();
    Tensor out = scaled_dot_product_attention(q, k, v);
    sum(mul(out, in.dout)).backward();
    return {out.detach(), q.grad(), k.grad(), v.grad()};
}

// The fused path: the backend entries called directly on `device` (inputs moved there),
// results brought back to the CPU. Also returns lse.
Result fused(const Inputs& in, Device device, Tensor* lse_out = nullptr) {
    Tensor q = in.q.to(device), k = in.k.to(device), v = in.v.to(device), dout = in.dout.to(device);
    int64_t B = q.size(0), Lq = q.size(1), dv = v.size(2);
    float scale = 1.0f / std::sqrt((float)q.size(2));
    Tensor out = Tensor::empty({B, Lq, dv}, DType::Float32, device);
    Tensor lse = Tensor::empty({B, Lq}, DType::Float32, device);
    Backend& be = backend_for(device);
    be.attention_forward(q, k, v, scale, out, lse);
    Tensor dq = Tensor::empty(q.shape(), DType::Float32, device), dk = Tensor::empty(k.shape(), DType::Float32, device),
           dvv = Tensor::empty(v.shape(), DType::Float32, device);
    be.attention_backward(q, k, v, out, lse, dout, scale, dq, dk, dvv);
    if (lse_out) *lse_out = lse.to(Device::CPU);
    return {out.to(Device::CPU), dq.to(Device::CPU), dk.to(Device::CPU), dvv.to(Device::CPU)};
}

void check_same(const Result& a, const Result& e, float atol, float rtol) {
    CHECK_CLOSE(a.out, e.out, atol, rtol);
    CHECK_CLOSE(a.dq, e.dq, atol, rtol);
    CHECK_CLOSE(a.dk, e.dk, atol, rtol);
    CHECK_CLOSE(a.dv, e.dv, atol, rtol);
}

// The shapes of the CPU cases.
const std::vector<Shape5> kShapes = {
    {1, 5, 7, 4, 3},      // tiny, one partial tile
    {3, 33, 70, 40, 24},  // B > 1, Lk over three tiles (32 + 32 + 6), Lq one past a tile
    {2, 64, 32, 32, 64},  // exact tiles, dv > d
    {2, 17, 45, 65, 7},   // d one past 64, small dv
    {1, 1, 1, 8, 8},      // one query, one key: P = 1, out = v
};

}  // namespace

TEST_CASE("attention fused: the CPU reference matches the composed op, forward and gradients") {
    for (const Shape5& s : kShapes) {
        INFO("B " << s.B << ", Lq " << s.Lq << ", Lk " << s.Lk << ", d " << s.d << ", dv " << s.dv);
        Inputs in = make_inputs(s, 100 + s.Lq);
        Tensor lse;
        Result f = fused(in, Device::CPU, &lse);
        check_same(f, composed(in), kAtol, kRtol);
        // lse is each row's log-sum-exp of S = q k^T / sqrt(d), by the plain formula
        Tensor S = mul(matmul(in.q, in.k.transpose(1, 2)), 1.0f / std::sqrt((float)s.d));
        Tensor m = max(S, -1, /*keepdim=*/true).values;
        Tensor expected = add(td::log(sum(td::exp(sub(S, m)), {2})), m.view({s.B, s.Lq}));
        CHECK_CLOSE(lse, expected, kAtol, kRtol);
    }
}

TEST_CASE("attention fused: the online max rescales a sum that started small") {
    // Query 0's largest score comes from key 40 (the second tile) and is some 50 above the
    // first tile's: the sum over the first tile must be rescaled by about exp(-50) ~ 1e-22,
    // neither overflow nor be kept. Query 1's largest score comes first (key 0), then only
    // much smaller ones. (d = 16: |k|^2 ~ 16, so q = 16 k gives S = 16 |k|^2 / 4 ~ 64.)
    Shape5 s{2, 3, 45, 16, 5};
    Inputs in = make_inputs(s, 7);
    float* q = in.q.data_f32();
    const float* k = in.k.data_f32();
    for (int c = 0; c < s.d; ++c) {
        q[c] = 16.0f * k[40 * s.d + c];  // batch 0, query 0: key 40
        q[s.d + c] = 16.0f * k[c];       // batch 0, query 1: key 0
    }
    Tensor lse;
    Result f = fused(in, Device::CPU, &lse);
    check_same(f, composed(in), kAtol, kRtol);
    std::vector<float> l = lse.to_vector();
    CHECK(l[0] > 30.0f);  // the case really has large scores
    CHECK(l[1] > 30.0f);
}

TEST_CASE("attention fused: the fused backward matches finite differences") {
    // A test-local op over the CPU backend's fused entries, so gradcheck drives exactly them
    // (the op itself takes the composed path on the CPU unless TD_ATTENTION=fused).
    auto fused_op = [](const std::vector<Tensor>& x) {
        Tensor q = x[0].detach().contiguous(), k = x[1].detach().contiguous(), v = x[2].detach().contiguous();
        float scale = 1.0f / std::sqrt((float)q.size(2));
        Tensor out = Tensor::empty({q.size(0), q.size(1), v.size(2)});
        Tensor lse = Tensor::empty({q.size(0), q.size(1)});
        backend_for(Device::CPU).attention_forward(q, k, v, scale, out, lse);
        return record(
            "fused_attention_test", out, {x[0], x[1], x[2]},
            [q, k, v, out, lse, scale](const Tensor& dout) -> std::vector<Tensor> {
                Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()), dv = Tensor::empty(v.shape());
                backend_for(Device::CPU).attention_backward(q, k, v, out, lse, dout.contiguous(), scale, dq, dk, dv);
                return {dq, dk, dv};
            });
    };
    Generator gen(5);
    // Lk = 35: two tiles; gradcheck's defaults (h 1e-2, atol 1e-3, rtol 1e-2) with L in double
    GradcheckResult g =
        gradcheck(fused_op, {randn({2, 3, 4}, gen).requires_grad_(), randn({2, 35, 4}, gen).requires_grad_(),
                             randn({2, 35, 3}, gen).requires_grad_()});
    INFO(g.message);
    CHECK(g.ok);
}

// Runs only as the child of the next test, which sets TD_ATTENTION_TEST_CHILD=1 and
// TD_ATTENTION; in a plain run of the suite it has nothing to do.
TEST_CASE("attention fused child: the op under TD_ATTENTION") {
    if (std::getenv("TD_ATTENTION_TEST_CHILD") == nullptr) return;
    const char* env = std::getenv("TD_ATTENTION");
    REQUIRE(env != nullptr);
    Inputs in = make_inputs({2, 20, 37, 12, 6}, 11);
    // The op on multi-head shapes (B = 2 x 1 heads), with autograd: under TD_ATTENTION=fused
    // it must give exactly the CPU backend's fused entries (same code, same inputs, same bits).
    Tensor q = in.q.view({2, 1, 20, 12}).detach().requires_grad_(),
           k = in.k.view({2, 1, 37, 12}).detach().requires_grad_(),
           v = in.v.view({2, 1, 37, 6}).detach().requires_grad_();
    Tensor out = scaled_dot_product_attention(q, k, v);  // throws for a TD_ATTENTION it does not know
    REQUIRE(out.grad_fn() != nullptr);
    CHECK(out.grad_fn()->name == "scaled_dot_product_attention");
    sum(mul(out, in.dout.view({2, 1, 20, 6}))).backward();
    Result f = fused(in, Device::CPU);
    CHECK(std::strcmp(env, "fused") == 0);
    CHECK(out.to_vector() == f.out.to_vector());
    CHECK(q.grad().to_vector() == f.dq.to_vector());
    CHECK(k.grad().to_vector() == f.dk.to_vector());
    CHECK(v.grad().to_vector() == f.dv.to_vector());
}

TEST_CASE("attention fused: TD_ATTENTION=fused sends the op to the fused kernels, a typo is an error") {
    std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
    std::string log = tdtest::scratch("attention_fused_child.txt");
    auto child = [&](const std::string& value) {
        std::string cmd = "TD_ATTENTION_TEST_CHILD=1 TD_ATTENTION=" + value + " " + exe +
                          " -tc='attention fused child*' > " + log + " 2>&1";
        int status = std::system(cmd.c_str());
        std::ifstream f(log);
        std::string text((std::istreambuf_iterator<char>(f)), {});
        return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, text);
    };
    auto [code, out] = child("fused");
    INFO(out);
    CHECK(code == 0);
    CHECK(tdtest::contains(out, "1 passed"));  // the child case ran (not filtered away) and passed
    auto [bad_code, bad_out] = child("fast");
    INFO(bad_out);
    CHECK(bad_code != 0);
    CHECK(tdtest::contains(bad_out, "TD_ATTENTION=fast: expected fused or composed"));
}

TEST_CASE("attention fused: CUDA kernels vs the CPU composed op") {
    if (tdtest::skip_without_gpu()) return;
    const std::vector<Shape5> shapes = {
        {3, 50, 77, 64, 64},    // the head dims of the tests' UNets; odd Lk
        {2, 40, 33, 128, 128},  // Lk one past a tile
        {2, 33, 65, 256, 256},  // the DDPM UNet's attention at 16 x 16
        {1, 9, 41, 512, 512},   // the largest head dim the kernels take
        {2, 17, 45, 40, 24},    // dv != d, neither a multiple of 32
        {1, 5, 3, 512, 8},      // d at the limit, tiny dv
        {4, 1, 1, 1, 1},        // one element everywhere
    };
    for (const Shape5& s : shapes) {
        INFO("B " << s.B << ", Lq " << s.Lq << ", Lk " << s.Lk << ", d " << s.d << ", dv " << s.dv);
        Inputs in = make_inputs(s, 200 + s.d);
        Tensor lse_gpu, lse_cpu;
        Result g = fused(in, Device::CUDA, &lse_gpu);
        fused(in, Device::CPU, &lse_cpu);
        check_same(g, composed(in), kGpuAtol, kGpuRtol);
        CHECK_CLOSE(lse_gpu, lse_cpu, kGpuAtol, kGpuRtol);
    }
}

TEST_CASE("attention fused: the op on the GPU, fused up to d = 512 and composed past it") {
    if (tdtest::skip_without_gpu()) return;
    for (Shape5 s : {Shape5{2, 21, 37, 64, 48}, Shape5{1, 7, 9, 600, 16}}) {
        INFO("d " << s.d << ", dv " << s.dv);
        Inputs in = make_inputs(s, 3);
        Result expected = composed(in);
        // leaves on the CPU, the op on the GPU: the gradients come back through .to()
        Tensor q = in.q.detach().requires_grad_(), k = in.k.detach().requires_grad_(),
               v = in.v.detach().requires_grad_();
        Tensor out = scaled_dot_product_attention(q.to(Device::CUDA), k.to(Device::CUDA), v.to(Device::CUDA));
        CHECK(out.device() == Device::CUDA);
        sum(mul(out, in.dout.to(Device::CUDA))).backward();
        check_same({out.to(Device::CPU).detach(), q.grad(), k.grad(), v.grad()}, expected, kGpuAtol, kGpuRtol);
    }
    // The kernels themselves refuse head dims past 512 with a message that says so.
    if (!cuda_is_standin()) {
        Inputs in = make_inputs({1, 2, 3, 520, 4}, 1);
        tdtest::check_message(tdtest::error_of([&] { fused(in, Device::CUDA); }),
                              {"attention", "head dims up to 512", "d = 520"});
    }
}
