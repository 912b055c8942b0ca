// cuda/cuda_backend.h: the CUDA backend: the same kernels as tensor/cpu/, on the GPU.
//
// It implements tensor/backend.h's interface, so an op never knows where its tensors
// live: tensor/ops/*.cpp checks shapes, allocates the output on the input's device and
// calls backend_for(device). One .cu file per op family, each beside its CPU twin:
//   runtime.cu      device query, registration, tensor/device.h
//   memory.cu       the caching allocator, host <-> device copies, strided copy and fill
//   elementwise.cu  unary (value and derivative side by side), binary, where
//   reduce.cu       sum / max over the innermost block (warp shuffles)
//   matmul.cu       batched GEMM: the ladder naive -> tiled -> register-blocked -> tensor
//                   cores (TF32, opt-in with TD_CUDA_TF32=1), cuda/gemm.h
//   index.cu        index_select / index_add, gather / scatter_add (atomicAdd)
//   conv.cu         conv2d (im2col + GEMM, col2im as a gather), avg_pool2d, upsample
//   norm.cu         GroupNorm, LayerNorm (two-pass statistics, deterministic backward)
//   softmax.cu      softmax / log_softmax over the last dim (online max and sum)
//   attention.cu    fused attention, forward and backward (warp per row, K/V tiles in shared memory)
//   optim.cu        fused Adam / AdamW and EMA updates (one pass over memory)
//   random.cu       fill_random: one thread per Philox block, the CPU's numbers
// The CPU files are the readable reference: each kernel here says in a comment which
// thread computes which element and why its blocks are shaped as they are.
// (Compiled in CI; no run on a real GPU is recorded yet. `make gpu-check` runs every CUDA
// test and bench on a machine that has one.)
#pragma once
#include "tensor/backend.h"

namespace td {

struct CudaBackend final : Backend {
    const char* name() const override { return "cuda"; }
    void* allocate(size_t nbytes) override;
    void deallocate(void* ptr) override;
    void copy(const Tensor& src, const Tensor& dst) override;
    void fill(const Tensor& dst, double value) override;
    void unary(UnaryOp op, const Tensor& x, const Tensor& out, float p0, float p1) override;
    void unary_backward(UnaryOp op, const Tensor& x, const Tensor& dy, const Tensor& dx, float p0, float p1) override;
    void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
    void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) override;
    void reduce_inner(ReduceOp op, const Tensor& x, int64_t inner, const Tensor& out, const Tensor& argmax) override;
    void matmul(const Tensor& a, const Tensor& b, const Tensor& out) override;
    void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) override;
    void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) override;
    void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) override;
    void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) override;
    void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                        const Conv2dShape& g) override;
    void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx, const Tensor& dw,
                         const Tensor& db, const Conv2dShape& g) override;
    void avg_pool2d(const Tensor& x, int64_t k, const Tensor& y) override;
    void avg_pool2d_backward(const Tensor& dy, int64_t k, const Tensor& dx) override;
    void upsample_nearest2d(const Tensor& x, int64_t s, const Tensor& y) override;
    void upsample_nearest2d_backward(const Tensor& dy, int64_t s, const Tensor& dx) override;
    void group_norm_forward(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, float eps,
                            const Tensor& y, const Tensor& mean, const Tensor& rstd) override;
    void group_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                             const Tensor& gamma, int64_t groups, const Tensor& dx, const Tensor& dgamma,
                             const Tensor& dbeta) override;
    void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, const Tensor& y,
                            const Tensor& mean, const Tensor& rstd) override;
    void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                             const Tensor& gamma, const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) override;
    void softmax_forward(const Tensor& x, const Tensor& y, bool log) override;
    void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, bool log) override;
    // memory.cu: host copies (cudaMemcpy)
    void copy_from_host(void* dst, const void* host_src, size_t nbytes) override;
    void copy_to_host(void* host_dst, const void* src, size_t nbytes) override;
    // attention.cu: fused attention, warp per row (head dims up to 512)
    void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& out,
                           const Tensor& lse) override;
    void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                            const Tensor& dout, float scale, const Tensor& dq, const Tensor& dk,
                            const Tensor& dv) override;
    // optim.cu: fused optimizer and EMA updates; random.cu: Philox random numbers
    void adam_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                     const AdamStep& s) override;
    void ema_update(const Tensor& shadow, const Tensor& param, float decay) override;
    void fill_random(const Tensor& dst, Distribution dist, uint64_t seed, uint64_t first_block, float p0,
                     float p1) override;
};

}  // namespace td
