// tensor/cpu/cpu_backend.h: the CPU backend, the engine's readable reference.
// Its kernels are spread over one file per op family:
//   memory.cpp       allocate, copy (strided, converting dtype), fill
//   elementwise.cpp  unary (forward and derivative side by side), binary, where
//   reduce.cpp       sum / max over the innermost block
//   matmul.cpp       batched GEMM through Eigen
//   index.cpp        index_select / index_add, gather / scatter_add
//   conv.cpp         conv2d (im2col + GEMM), avg_pool2d, upsample_nearest2d
//   norm.cpp         GroupNorm, LayerNorm (fused, saving mean and rstd)
//   softmax.cpp      softmax / log_softmax over the last dim
//   attention.cpp    fused attention, forward and backward (online softmax, flash style)
//   optim.cpp        fused Adam / AdamW and EMA updates
//   random.cpp       fill_random: Philox numbers for rand / randn
// Parallelism is OpenMP over independent rows. Elementwise ops, reductions (fixed-size
// chunks summed in a fixed order) and random numbers give the same bits for any thread
// count; a single large square GEMM does not (Eigen's blocking depends on the thread
// count), so bitwise reproducibility holds for the same thread count.
#pragma once
#include <initializer_list>

#include "tensor/backend.h"

namespace td {

struct CpuBackend : Backend {
    const char* name() const override { return "cpu"; }
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
    // conv.cpp
    void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                        const Conv2dShape& g) override;
    void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx, const Tensor& dw,
                         const Tensor& db, const Conv2dShape& g) override;
    void avg_pool2d(const Tensor& x, int64_t k, const Tensor& y) override;
    void avg_pool2d_backward(const Tensor& dy, int64_t k, const Tensor& dx) override;
    void upsample_nearest2d(const Tensor& x, int64_t s, const Tensor& y) override;
    void upsample_nearest2d_backward(const Tensor& dy, int64_t s, const Tensor& dx) override;
    // norm.cpp
    void group_norm_forward(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, float eps,
                            const Tensor& y, const Tensor& mean, const Tensor& rstd) override;
    void group_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                             const Tensor& gamma, int64_t groups, const Tensor& dx, const Tensor& dgamma,
                             const Tensor& dbeta) override;
    void group_norm_silu_forward(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, float eps,
                                 const Tensor& y, const Tensor& mean, const Tensor& rstd) override;
    void group_norm_silu_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                  const Tensor& gamma, const Tensor& beta, int64_t groups, float eps, const Tensor& dx,
                                  const Tensor& dgamma, const Tensor& dbeta) override;
    void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, const Tensor& y,
                            const Tensor& mean, const Tensor& rstd) override;
    void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                             const Tensor& gamma, const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) override;
    // softmax.cpp
    void softmax_forward(const Tensor& x, const Tensor& y, bool log) override;
    void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, bool log) override;
    // memory.cpp: host copies (a memcpy: CPU memory is host memory)
    void copy_from_host(void* dst, const void* host_src, size_t nbytes) override;
    void copy_to_host(void* host_dst, const void* src, size_t nbytes) override;
    // attention.cpp: fused attention (online softmax; the backward rebuilds P from lse)
    void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& out,
                           const Tensor& lse) override;
    void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                            const Tensor& dout, float scale, const Tensor& dq, const Tensor& dk,
                            const Tensor& dv) override;
    // optim.cpp: fused optimizer and EMA updates; random.cpp: Philox random numbers
    void adam_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                     const AdamStep& s) override;
    void ema_update(const Tensor& shadow, const Tensor& param, float decay) override;
    void fill_random(const Tensor& dst, Distribution dist, uint64_t seed, uint64_t first_block, float p0,
                     float p1) override;
};

// Row-major walk helpers shared by the kernels. A "row" is every index of all dims but
// the last; row_offset gives where row r starts in a tensor with the given strides.
// 0-d tensors are walked as shape [1].
struct RowLayout {
    Shape shape;    // at least 1-D
    Shape strides;  // same length
    int64_t rows() const;
    int64_t row_len() const { return shape.back(); }
};
RowLayout row_layout(const Tensor& t);
int64_t row_offset(const RowLayout& layout, int64_t row);
// Merges neighbouring dims that every layout walks as one (stride[d] = stride[d + 1] *
// shape[d + 1] in all of them), so that rows get as long as the memory allows: a slice
// (N, C, H, W) of a concatenation is N rows of C*H*W instead of N*C*H rows of W. The
// layouts must have the same shape; the elements are visited in the same order.
void coalesce(std::initializer_list<RowLayout*> layouts);

}  // namespace td
