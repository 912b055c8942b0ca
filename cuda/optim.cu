// cuda/optim.cu: the fused Adam / AdamW and EMA updates, the twin of tensor/cpu/optim.cpp
// (the same terms in the same order; nn/optim.cpp and nn/ema.h have the equations).
//
// Why one fused kernel: an Adam step touches four arrays of the parameter's size (theta,
// g, m, v). Written as tensor ops, one per term (m.mul_(beta1).add_(g, 1 - beta1), g * g,
// sqrt(v), ... ) it launches about ten kernels, each reading or writing whole arrays:
// some ten passes over memory plus temporaries. The update does a handful of flops per
// element, so its time is memory traffic; here each thread loads theta, g, m, v once,
// updates them in registers and stores theta, m, v once: 4 reads and 3 writes per element.
//
// Both kernels: thread t of block b handles element i = b * blockDim + t and every
// gridDim * blockDim after it (a grid-stride loop over the flat, contiguous arrays), so
// consecutive threads touch consecutive floats and every load and store coalesces.
// Elements are independent: no thread reads what another writes, no synchronisation.
//
// Against the CPU: nvcc, like the host compiler, may fuse a multiply and an add into one
// FMA, and not necessarily the same ones; sqrtf and the division are correctly rounded
// (nvcc's defaults, no --use_fast_math). The two agree to a few units in the last place.
#include <cstdint>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"

namespace td {

namespace {

constexpr int kThreads = 256;  // 8 warps per block
unsigned grid_for(int64_t n) { return cuda::grid_stride_blocks(n, kThreads); }

void check_on_cuda(const Tensor& t, const char* op, const char* name, int64_t n) {
    check(t.device() == Device::CUDA && t.dtype() == DType::Float32 && t.is_contiguous() && t.numel() == n, op,
          " (cuda): ", name, " must be a contiguous float32 tensor of ", n, " elements on cuda");
}

// The scalars of one Adam step, as tensor/cpu/optim.cpp computes them once per step.
struct AdamScalars {
    bool decoupled;
    float weight_decay, decoupled_decay;  // decoupled_decay = 1 - lr lambda
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float inv_bias_correction2_sqrt, eps, step_size;
};

__global__ void adam_kernel(float* theta, const float* g, float* m, float* v, AdamScalars s, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float th = theta[i], gi = g[i];
        if (s.decoupled) th = th * s.decoupled_decay;                     // AdamW: theta <- theta - lr lambda theta
        else if (s.weight_decay != 0.0f) gi = gi + th * s.weight_decay;   // Adam + L2: g_t = grad + lambda theta
        const float mi = m[i] * s.beta1 + gi * s.one_minus_beta1;         // m_t = beta1 m_{t-1} + (1 - beta1) g_t
        const float vi = v[i] * s.beta2 + (gi * gi) * s.one_minus_beta2;  // v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        m[i] = mi;
        v[i] = vi;
        const float denom = sqrtf(vi) * s.inv_bias_correction2_sqrt + s.eps;  // sqrt(v_t) / sqrt(1 - beta2^t) + eps
        theta[i] = th - (mi / denom) * s.step_size;                           // theta_t = theta - step_size m_t / denom
    }
}

// shadow_t = decay_t shadow_{t-1} + (1 - decay_t) theta_t
__global__ void ema_kernel(float* shadow, const float* param, float decay, float one_minus_decay, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        shadow[i] = shadow[i] * decay + param[i] * one_minus_decay;
}

}  // namespace

void CudaBackend::adam_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                              const AdamStep& s) {
    const int64_t n = param.numel();
    check_on_cuda(param, "adam_update", "param", n);
    check_on_cuda(grad, "adam_update", "grad", n);
    check_on_cuda(m, "adam_update", "exp_avg", n);
    check_on_cuda(v, "adam_update", "exp_avg_sq", n);
    if (n == 0) return;
    AdamScalars k;
    k.decoupled = s.decoupled;
    k.weight_decay = s.weight_decay;
    k.decoupled_decay = 1.0f - s.lr * s.weight_decay;
    k.beta1 = s.beta1;
    k.one_minus_beta1 = 1.0f - s.beta1;
    k.beta2 = s.beta2;
    k.one_minus_beta2 = 1.0f - s.beta2;
    k.inv_bias_correction2_sqrt = 1.0f / s.bias_correction2_sqrt;  // x / c is x * (1 / c), as on the CPU
    k.eps = s.eps;
    k.step_size = s.step_size;
    adam_kernel<<<grid_for(n), kThreads>>>(param.data_f32(), grad.data_f32(), m.data_f32(), v.data_f32(), k, n);
    cuda::check_launch("adam_kernel");
}

void CudaBackend::ema_update(const Tensor& shadow, const Tensor& param, float decay) {
    const int64_t n = shadow.numel();
    check_on_cuda(shadow, "ema_update", "shadow", n);
    check_on_cuda(param, "ema_update", "param", n);
    if (n == 0) return;
    ema_kernel<<<grid_for(n), kThreads>>>(shadow.data_f32(), param.data_f32(), decay, 1.0f - decay, n);
    cuda::check_launch("ema_kernel");
}

}  // namespace td
