// tensor/cpu/optim.cpp: the optimizer's and the EMA's updates as one loop each, in place.
//
// Why fused: one Adam step reads and writes four arrays (theta, g, m, v). Written as
// tensor ops (m.mul_(beta1).add_(g, 1 - beta1), ...) it makes about ten passes over
// memory and allocates temporaries for g * g, sqrt(v), the denominator and m / denom.
// Here each element is loaded once, updated in registers, and stored once: the update is
// memory-bound, so fewer passes is what makes it faster.
//
// The arithmetic is nn/optim.cpp's tensor-op version, term by term and in the same order
// (nn/optim.cpp has the equations with their sources). One difference in the last bit is
// possible: in a single expression the compiler may fuse a multiply and an add into one
// FMA (one rounding instead of two). PyTorch's fixtures are met either way (tests/test_optim.cpp).
#include <cmath>
#include <cstdint>

#include "tensor/cpu/cpu_backend.h"

namespace td {

static constexpr int64_t kParallelMin = 32768;  // below this, threads cost more than they save

void CpuBackend::adam_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                             const AdamStep& s) {
    float* theta = param.data_f32();
    const float* g = grad.data_f32();
    float* mp = m.data_f32();
    float* vp = v.data_f32();
    const int64_t n = param.numel();
    // The per-step scalars, computed once (in float, as the tensor-op version computed them).
    const float decoupled_decay = 1.0f - s.lr * s.weight_decay;  // AdamW: theta *= 1 - lr lambda
    const float one_minus_beta1 = 1.0f - s.beta1, one_minus_beta2 = 1.0f - s.beta2;
    // x / c for a scalar c is x * (1 / c) in tensor/ops (and in PyTorch on the CPU): the same here.
    const float inv_bias_correction2_sqrt = 1.0f / s.bias_correction2_sqrt;
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
        float gi = g[i];
        if (s.decoupled) {
            // AdamW (Loshchilov & Hutter 2019, Alg. 2 line 12): theta <- theta - lr lambda theta
            theta[i] = theta[i] * decoupled_decay;
        } else if (s.weight_decay != 0.0f) {
            // Adam with L2 regularisation: g_t = grad + lambda theta_{t-1}
            gi = gi + theta[i] * s.weight_decay;
        }
        // Kingma & Ba 2015, Alg. 1: m_t = beta1 m_{t-1} + (1 - beta1) g_t
        const float mi = mp[i] * s.beta1 + gi * one_minus_beta1;
        // v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        const float vi = vp[i] * s.beta2 + (gi * gi) * one_minus_beta2;
        mp[i] = mi;
        vp[i] = vi;
        // theta_t = theta_{t-1} - lr m_hat_t / (sqrt(v_hat_t) + eps), arranged as PyTorch does:
        //   denom = sqrt(v_t) / sqrt(1 - beta2^t) + eps,  theta_t = theta_{t-1} - step_size m_t / denom
        const float denom = std::sqrt(vi) * inv_bias_correction2_sqrt + s.eps;
        theta[i] = theta[i] - (mi / denom) * s.step_size;
    }
}

void CpuBackend::ema_update(const Tensor& shadow, const Tensor& param, float decay) {
    float* sp = shadow.data_f32();
    const float* p = param.data_f32();
    const int64_t n = shadow.numel();
    const float one_minus_decay = 1.0f - decay;
    // shadow_t = decay_t shadow_{t-1} + (1 - decay_t) theta_t
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) sp[i] = sp[i] * decay + p[i] * one_minus_decay;
}

}  // namespace td
