// tensor/backend.h: the seam between ops and the hardware.
//
// An op (tensor/ops/*.cpp) never loops over elements itself: it checks shapes,
// allocates the output and calls one of these kernels on backend_for(device). The CPU
// backend (tensor/cpu/*.cpp, Eigen + OpenMP) is the readable reference; a CUDA backend
// implements the same interface in cuda/ and registers itself with register_backend().
//
// Kernel contracts: tensors arrive already checked (same dtype, broadcast shapes
// resolved), inputs may be any strided view, outputs are freshly allocated contiguous
// tensors unless a kernel says otherwise.
#pragma once
#include <cstddef>
#include <cstdint>

#include "tensor/tensor.h"

namespace td {

// clang-format off
// Elementwise ops of one input; p0, p1 are the op's scalar parameters.
enum class UnaryOp {
    Neg, Exp, Log, Sqrt, Abs, Tanh, Sigmoid, Relu, Silu, Gelu,
    Softplus,   // log(1 + e^(p0 x)) / p0, or x where p0 x > p1 (p0 = beta, p1 = threshold)
    PowScalar,  // x^p0
    Clamp,      // min(max(x, p0), p1)
    AddScalar,  // x + p0
    MulScalar,  // x * p0
};
// clang-format on
// Elementwise ops of two inputs.
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Gt, Lt, Eq };
// Reductions over the innermost block of a contiguous tensor.
enum class ReduceOp { Sum, Max };

// The geometry of one 2-D convolution, computed once by the op (tensor/ops/conv.cpp).
// x: (N, C, H, W), w: (K, C / groups, R, S), y: (N, K, OH, OW) with
// OH = (H + 2 pad - R) / stride + 1 and OW likewise.
struct Conv2dShape {
    int64_t N, C, H, W;  // input
    int64_t K, R, S;     // output channels, kernel height and width
    int64_t stride, pad, groups;
    int64_t OH, OW;  // output height and width
};

struct Backend {
    virtual ~Backend() = default;
    virtual const char* name() const = 0;

    // memory
    virtual void* allocate(size_t nbytes) = 0;
    virtual void deallocate(void* ptr) = 0;

    // dst[i] = src[i] for every index, any strides on both sides; converts dtype.
    virtual void copy(const Tensor& src, const Tensor& dst) = 0;
    // dst[i] = value, any strides.
    virtual void fill(const Tensor& dst, double value) = 0;

    // out = f(x) and dx = dy * f'(x), side by side in tensor/cpu/elementwise.cpp.
    virtual void unary(UnaryOp op, const Tensor& x, const Tensor& out, float p0, float p1) = 0;
    virtual void unary_backward(UnaryOp op, const Tensor& x, const Tensor& dy, const Tensor& dx, float p0,
                                float p1) = 0;
    // out = a (op) b, with a and b already expanded to out's shape (stride 0 where broadcast).
    // out may alias a (in-place add_), never with a different layout.
    virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
    // out = cond != 0 ? a : b; all three already expanded to out's shape.
    virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) = 0;

    // x: contiguous (outer, inner). out[o] = reduce(x[o, :]); for Max, argmax[o] too.
    virtual void reduce_inner(ReduceOp op, const Tensor& x, int64_t inner, const Tensor& out, const Tensor& argmax) = 0;

    // out (B, M, N) = a (B, M, K) @ b (B, K, N). a and b may be transposed views
    // (unit stride on either of their last two dims); out is contiguous.
    virtual void matmul(const Tensor& a, const Tensor& b, const Tensor& out) = 0;

    // out = x.index_select(dim, index); x contiguous, index 1-D int64 (checked in range).
    virtual void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) = 0;
    // out (contiguous, zeroed by caller) .index_add_(dim, index, src): the backward of index_select.
    virtual void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) = 0;
    // out[..i..] = x[.. index[..i..] along dim ..]; x, index contiguous.
    virtual void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) = 0;
    // out (contiguous, zeroed by caller) [.. index[..i..] along dim ..] += src[..i..]: gather's backward.
    virtual void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) = 0;

    // ---- convolution family (tensor/cpu/conv.cpp); all tensors contiguous ----------------
    // y = conv(x, w) + bias; bias may be undefined.
    virtual void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                                const Conv2dShape& g) = 0;
    // dx, dw, db from dy; each output may be undefined (not needed). Outputs are overwritten.
    // x may be undefined when dw is (dx needs only w and dy). conv_transpose2d has no kernel
    // of its own: its forward is this dx, its backward conv2d_forward and this dw.
    virtual void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx, const Tensor& dw,
                                 const Tensor& db, const Conv2dShape& g) = 0;
    // y (N, C, H / k, W / k) = mean over each k x k window (stride k, no padding)
    virtual void avg_pool2d(const Tensor& x, int64_t k, const Tensor& y) = 0;
    virtual void avg_pool2d_backward(const Tensor& dy, int64_t k, const Tensor& dx) = 0;
    // y (N, C, H * s, W * s) = x repeated s x s (nearest neighbour)
    virtual void upsample_nearest2d(const Tensor& x, int64_t s, const Tensor& y) = 0;
    virtual void upsample_nearest2d_backward(const Tensor& dy, int64_t s, const Tensor& dx) = 0;

    // ---- normalisation (tensor/cpu/norm.cpp); all tensors contiguous ----------------------
    // GroupNorm: x (N, C, *) in G groups of C / G channels; mean, rstd: (N, G) saved for backward.
    virtual void group_norm_forward(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, float eps,
                                    const Tensor& y, const Tensor& mean, const Tensor& rstd) = 0;
    virtual void group_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                     const Tensor& gamma, int64_t groups, const Tensor& dx, const Tensor& dgamma,
                                     const Tensor& dbeta) = 0;
    // SiLU(GroupNorm(x)) in one pass, the pair every ResBlock applies. y = silu(z) with
    // z = GroupNorm(x); z is not kept: the backward recomputes it from x, mean and rstd.
    // The defaults (tensor/backend.cpp) compose the two entries above with unary / unary_backward,
    // so every backend has them; the CPU backend fuses them (tensor/cpu/norm.cpp).
    virtual void group_norm_silu_forward(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta,
                                         float eps, const Tensor& y, const Tensor& mean, const Tensor& rstd);
    virtual void group_norm_silu_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                          const Tensor& gamma, const Tensor& beta, int64_t groups, float eps,
                                          const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta);
    // LayerNorm over the last D = gamma.numel() elements: x viewed as (M, D); mean, rstd: (M).
    virtual void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                    const Tensor& y, const Tensor& mean, const Tensor& rstd) = 0;
    virtual void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                     const Tensor& gamma, const Tensor& dx, const Tensor& dgamma,
                                     const Tensor& dbeta) = 0;

    // ---- softmax over the last dim (tensor/cpu/softmax.cpp) --------------------------------
    // y = softmax(x) or log_softmax(x) (log = true); backward from the saved output y.
    virtual void softmax_forward(const Tensor& x, const Tensor& y, bool log) = 0;
    virtual void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, bool log) = 0;

    // The entries below are optional: a backend overrides those it has kernels for. Their
    // defaults (tensor/backend.cpp) throw td::Error naming the backend, so a backend that lacks
    // one fails loudly, not wrongly.

    // ---- raw bytes between this backend's memory and the host's (tensor/device.cpp) --------
    // What Tensor::to(Device) runs on: CPU memcpy, cudaMemcpy on the GPU.
    virtual void copy_from_host(void* dst, const void* host_src, size_t nbytes);
    virtual void copy_to_host(void* host_dst, const void* src, size_t nbytes);

    // ---- fused attention, flash-attention style (tensor/cpu/attention.cpp) -----------------
    // q (B, Lq, d), k (B, Lk, d), v (B, Lk, dv), all contiguous. out (B, Lq, dv) =
    // softmax(q k^T * scale) v, computed one query row at a time with an online softmax, never
    // storing the (Lq, Lk) matrix; lse (B, Lq) = the log-sum-exp of each row of q k^T * scale,
    // saved so the backward can rebuild P = exp(S - lse) tile by tile.
    virtual void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& out,
                                   const Tensor& lse);
    // dq, dk, dv (shapes of q, k, v; overwritten) from dout (B, Lq, dv), the forward's out and lse.
    virtual void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, const Tensor& dout, float scale, const Tensor& dq,
                                    const Tensor& dk, const Tensor& dv);

    // ---- optimizer and EMA updates: in place, one pass over memory (tensor/cpu/optim.cpp) --
    // One Adam / AdamW step for one parameter (nn/optim.cpp has the equations); param, grad,
    // m (exp_avg), v (exp_avg_sq) contiguous float32 of one shape, the last three updated.
    struct AdamStep {
        float lr, beta1, beta2, eps, weight_decay;
        bool decoupled;               // AdamW: theta *= 1 - lr wd; Adam: g += wd theta
        float step_size;              // lr / (1 - beta1^t)
        float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
    };
    virtual void adam_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                             const AdamStep& s);
    // shadow = decay shadow + (1 - decay) param, both contiguous float32 of one shape.
    virtual void ema_update(const Tensor& shadow, const Tensor& param, float decay);

    // ---- random numbers (tensor/cpu/random.cpp, used by tensor/random.cpp) ----------------
    // dst (contiguous float32) element i from Philox 4x32-10 block (first_block + i / 4) under
    // key `seed`, word i % 4: uniform in [p0, p1), or normal (mean p0, std p1) by Box-Muller on
    // the block's word pairs. The same numbers on every backend and for any thread count.
    enum class Distribution { Uniform, Normal };
    virtual void fill_random(const Tensor& dst, Distribution dist, uint64_t seed, uint64_t first_block, float p0,
                             float p1);
};

// The registry (tensor/backend.cpp). The backend that runs tensors on `device`; throws
// td::Error if none is usable. The CPU backend is built in.
Backend& backend_for(Device device);
// Makes `backend` the one for Device::CUDA (nullptr: none): the CUDA backend calls it on
// finding a GPU, the host-memory stand-in when it starts and stops.
void register_backend(Device device, Backend* backend);

}  // namespace td
