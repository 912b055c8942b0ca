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
// The CPU files are the readable reference: each kernel here says in a comment which
// thread computes which element and why its blocks are shaped as they are.
// (Issue 6 is in progress: written and compiled, not yet run on a GPU; the ops, modules,
// optimizers and the trainer are not yet device-aware throughout.)
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
    void unary_backward(UnaryOp op, const Tensor& x, const Tensor& dy, const Tensor& dx, float p0,
                        float p1) override;
    void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
    void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) override;
    void reduce_inner(ReduceOp op, const Tensor& x, int64_t inner, const Tensor& out,
                      const Tensor& argmax) override;
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
                             const Tensor& gamma, const Tensor& dx, const Tensor& dgamma,
                             const Tensor& dbeta) override;
    void softmax_forward(const Tensor& x, const Tensor& y, bool log) override;
    void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, bool log) override;
    // host copies (memory): copy_from_host, copy_to_host
    // fused attention: attention_forward, attention_backward
    // optimizer updates and random numbers: adam_update, ema_update, fill_random
};

}  // namespace td
