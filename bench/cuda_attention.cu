// bench/cuda_attention.cu: the fused attention kernels (cuda/attention.cu) against the naive
// three-kernel attention on the GPU, forward and forward + backward.
//
//   naive   S = Qs K^T (our GEMM, cuda/gemm.h), P = softmax(S) (cuda/softmax.cu), O = P V (GEMM);
//           backward dV = P^T dO, dP = dO V^T, dS = softmax_backward(P, dP), dQ = dS K scale,
//           dK = dS^T Qs: five GEMMs, one softmax backward, one scaling. It stores the whole
//           (L, L) matrices S, P, dP, dS: what the composed op (tensor/ops/attention.cpp) does.
//           (Qs = Q / sqrt(d) is made once, before timing.)
//   fused   the backend's attention_forward, and attention_backward after it: P never stored.
//
// Shapes: the DDPM UNet's attention at 16 x 16 (B x heads = 128, L = 256, d = 256) and a long
// sequence with small heads (B x heads = 64, L = 1024, d = 64). Each variant runs 3 times
// untimed, then 20 times, each timed alone with CUDA events (the L2 cache flushed before
// each); the table shows the median.
// Checks: "max abs diff" is the largest |fused - naive| (O forward; dQ, dK, dV backward);
// "vs CPU" the fused kernels' relative error against the CPU's (tensor/cpu/attention.cpp) on
// batch entry 0. "check" is ok when both are within tolerance (FP32 1e-4, TF32 1e-2 of the
// reference's largest element, bench/cuda_timing.h); otherwise the bench exits 3.
//
//   build/bench_cuda_attention        (needs a GPU; without one it says so and exits 0)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "bench/cuda_timing.h"
#include "cuda/cuda_check.h"
#include "cuda/gemm.h"
#include "tensor/backend.h"
#include "tensor/device.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

using namespace td;

namespace {

constexpr int kWarmup = 3, kReps = 20;

// Median milliseconds of fn() over kReps calls, each between two CUDA events.
double median_ms(const std::function<void()>& fn) {
    cudaEvent_t start, stop;
    cuda::check_cuda(cudaEventCreate(&start), "cudaEventCreate");
    cuda::check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
    for (int i = 0; i < kWarmup; ++i) fn();
    std::vector<double> ms;
    for (int i = 0; i < kReps; ++i) {
        bench::flush_l2();  // queued before the start event: not timed (bench/cuda_timing.h)
        cuda::check_cuda(cudaEventRecord(start), "cudaEventRecord");
        fn();
        cuda::check_cuda(cudaEventRecord(stop), "cudaEventRecord");
        cuda::check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
        float t = 0.0f;
        cuda::check_cuda(cudaEventElapsedTime(&t, start, stop), "cudaEventElapsedTime");
        ms.push_back(t);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

struct Case {
    const char* name;
    int64_t B, L, d;
};

// TD_CUDA_TF32=1: the naive form's GEMMs run on tensor cores (cuda/gemm.h), checked at 1e-2.
bool tf32_gemm() {
    const char* v = std::getenv("TD_CUDA_TF32");
    return v != nullptr && std::string(v) == "1";
}

void run(const Case& c, bench::Checks& checks) {
    const int64_t B = c.B, L = c.L, d = c.d;
    const Device dev = Device::CUDA;
    const float scale = 1.0f / std::sqrt((float)d);
    Backend& be = backend_for(dev);
    Generator gen(1);
    Tensor Q = randn({B, L, d}, gen, 0.0f, 1.0f, dev), K = randn({B, L, d}, gen, 0.0f, 1.0f, dev),
           V = randn({B, L, d}, gen, 0.0f, 1.0f, dev), dO = randn({B, L, d}, gen, 0.0f, 1.0f, dev);
    auto empty = [&](const Shape& s) { return Tensor::empty(s, DType::Float32, dev); };

    // fused: out, lse; dq, dk, dv
    Tensor O_f = empty({B, L, d}), lse = empty({B, L}), dQ_f = empty({B, L, d}), dK_f = empty({B, L, d}),
           dV_f = empty({B, L, d});
    auto fused_fwd = [&] { be.attention_forward(Q, K, V, scale, O_f, lse); };
    auto fused_fwd_bwd = [&] {
        fused_fwd();
        be.attention_backward(Q, K, V, O_f, lse, dO, scale, dQ_f, dK_f, dV_f);
    };

    // naive: every (L, L) intermediate stored
    Tensor Qs = empty({B, L, d});
    be.unary(UnaryOp::MulScalar, Q, Qs, scale, 0.0f);
    Tensor S = empty({B, L, L}), P = empty({B, L, L}), dP = empty({B, L, L}), dS = empty({B, L, L});
    Tensor O_n = empty({B, L, d}), dV_n = empty({B, L, d}), dQ_raw = empty({B, L, d}), dQ_n = empty({B, L, d}),
           dK_n = empty({B, L, d});
    const int64_t sLd = L * d, sLL = L * L;
    auto naive_fwd = [&] {
        // S (L, L) = Qs (L, d) K^T: K stored (L, d), transposed
        cuda::gemm(false, true, L, L, d, Qs.data_f32(), d, sLd, K.data_f32(), d, sLd, S.data_f32(), L, sLL, B, 0.0f);
        be.softmax_forward(S, P, /*log=*/false);
        // O (L, d) = P (L, L) V (L, d)
        cuda::gemm(false, false, L, d, L, P.data_f32(), L, sLL, V.data_f32(), d, sLd, O_n.data_f32(), d, sLd, B, 0.0f);
    };
    auto naive_fwd_bwd = [&] {
        naive_fwd();
        // BEGIN HIDE attention-backward
        // dV = P^T dO: P stored (L, L), transposed
        cuda::gemm(true, false, L, d, L, P.data_f32(), L, sLL, dO.data_f32(), d, sLd, dV_n.data_f32(), d, sLd, B, 0.0f);
        // dP = dO V^T: V stored (L, d), transposed
        cuda::gemm(false, true, L, L, d, dO.data_f32(), d, sLd, V.data_f32(), d, sLd, dP.data_f32(), L, sLL, B, 0.0f);
        be.softmax_backward(P, dP, dS, /*log=*/false);
        // dQ = dS K scale
        cuda::gemm(false, false, L, d, L, dS.data_f32(), L, sLL, K.data_f32(), d, sLd, dQ_raw.data_f32(), d, sLd, B,
                   0.0f);
        be.unary(UnaryOp::MulScalar, dQ_raw, dQ_n, scale, 0.0f);
        // dK = dS^T Qs: dS stored (L, L), transposed
        cuda::gemm(true, false, L, d, L, dS.data_f32(), L, sLL, Qs.data_f32(), d, sLd, dK_n.data_f32(), d, sLd, B,
                   0.0f);
        // END HIDE attention-backward
    };

    double ff = median_ms(fused_fwd), nf = median_ms(naive_fwd);
    double ffb = median_ms(fused_fwd_bwd), nfb = median_ms(naive_fwd_bwd);
    cuda::check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    auto max_diff = [](const Tensor& a, const Tensor& b) {
        std::vector<float> x = a.to(Device::CPU).to_vector(), y = b.to(Device::CPU).to_vector();
        double m = 0.0;
        for (size_t i = 0; i < x.size(); ++i) m = std::max(m, (double)std::fabs(x[i] - y[i]));
        return m;
    };
    double diff_fwd = max_diff(O_f, O_n);
    double diff_bwd = std::max({max_diff(dQ_f, dQ_n), max_diff(dK_f, dK_n), max_diff(dV_f, dV_n)});
    // The fused kernels against the CPU's, on batch entry 0 (one keeps the CPU's share short):
    // out and lse forward, dq, dk, dv backward, relative to each reference's largest element.
    Backend& cpu = backend_for(Device::CPU);
    auto first = [](const Tensor& t) { return t.narrow(0, 0, 1).to(Device::CPU); };
    Tensor q0 = first(Q), k0 = first(K), v0 = first(V), do0 = first(dO);
    auto cpu_empty = [](const Shape& s) { return Tensor::empty(s, DType::Float32, Device::CPU); };
    Tensor o0 = cpu_empty({1, L, d}), lse0 = cpu_empty({1, L}), dq0 = cpu_empty({1, L, d}), dk0 = cpu_empty({1, L, d}),
           dv0 = cpu_empty({1, L, d});
    cpu.attention_forward(q0, k0, v0, scale, o0, lse0);
    cpu.attention_backward(q0, k0, v0, o0, lse0, do0, scale, dq0, dk0, dv0);
    const double tol = bench::tolerance(tf32_gemm());
    const double err_fwd = std::max(bench::max_rel_error(first(O_f), o0), bench::max_rel_error(first(lse), lse0));
    const double err_bwd = std::max({bench::max_rel_error(first(dQ_f), dq0), bench::max_rel_error(first(dK_f), dk0),
                                     bench::max_rel_error(first(dV_f), dv0)});
    // and the naive form (our GEMMs and softmax) against the fused one, relative likewise
    auto max_abs = [](const Tensor& t) {
        double m = 0.0;
        for (float v : t.to(Device::CPU).to_vector()) m = std::max(m, (double)std::fabs(v));
        return m;
    };
    auto rel = [&](double diff, const Tensor& ref) { return diff / std::max(max_abs(ref), 1e-30); };
    const char* v_fwd = checks.add(std::string(c.name) + ", forward: fused vs the CPU", err_fwd, tol);
    const char* v_bwd = checks.add(std::string(c.name) + ", backward: fused vs the CPU", err_bwd, tol);
    const char* n_fwd = checks.add(std::string(c.name) + ", forward: naive vs fused", rel(diff_fwd, O_f), tol);
    const char* n_bwd = checks.add(
        std::string(c.name) + ", backward: naive vs fused",
        std::max({rel(max_diff(dQ_f, dQ_n), dQ_f), rel(max_diff(dK_f, dK_n), dK_f), rel(max_diff(dV_f, dV_n), dV_f)}),
        tol);
    std::printf("| %s | forward | %.3f | %.3f | %.2f | %.1e | %.1e | %s |\n", c.name, ff, nf, nf / ff, diff_fwd,
                err_fwd, std::string(v_fwd) == "ok" && std::string(n_fwd) == "ok" ? "ok" : "**FAIL**");
    std::printf("| %s | forward + backward | %.3f | %.3f | %.2f | %.1e | %.1e | %s |\n", c.name, ffb, nfb, nfb / ffb,
                diff_bwd, err_bwd, std::string(v_bwd) == "ok" && std::string(n_bwd) == "ok" ? "ok" : "**FAIL**");
    std::fflush(stdout);
}

}  // namespace

int main() {
    if (!cuda_available() || cuda_is_standin()) {
        std::printf("bench_cuda_attention: needs a GPU (%s)\n", cuda_description().c_str());
        return 0;
    }
    try {
        std::printf("# fused vs naive attention, float32, %s\n", cuda_description().c_str());
        std::printf("| shape | pass | fused ms | naive ms | naive / fused | max abs diff | vs CPU | check |\n");
        std::printf("|---|---|---|---|---|---|---|---|\n");
        bench::Checks checks;
        for (const Case& c :
             {Case{"B*h=128, L=256 (16x16), d=256", 128, 256, 256}, Case{"B*h=64, L=1024, d=64", 64, 1024, 64}})
            run(c, checks);
        return checks.report("bench_cuda_attention");
    } catch (const Error& e) {
        std::fprintf(stderr, "bench_cuda_attention: %s\n", e.what());
        return 1;
    }
}
