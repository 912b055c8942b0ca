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

#include "tensor/tensor.h"

namespace td {

// Elementwise ops of one input; p0, p1 are the op's scalar parameters.
enum class UnaryOp {
    Neg, Exp, Log, Sqrt, Abs, Tanh, Sigmoid, Relu, Silu, Gelu,
    PowScalar,  // x^p0
    Clamp,      // min(max(x, p0), p1)
    AddScalar,  // x + p0
    MulScalar,  // x * p0
};
// Elementwise ops of two inputs.
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Gt, Lt, Eq };
// Reductions over the innermost block of a contiguous tensor.
enum class ReduceOp { Sum, Max };

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
    virtual void unary_backward(UnaryOp op, const Tensor& x, const Tensor& dy, const Tensor& dx,
                                float p0, float p1) = 0;
    // out = a (op) b, with a and b already expanded to out's shape (stride 0 where broadcast).
    // out may alias a (in-place add_), never with a different layout.
    virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
    // out = cond != 0 ? a : b; all three already expanded to out's shape.
    virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) = 0;

    // x: contiguous (outer, inner). out[o] = reduce(x[o, :]); for Max, argmax[o] too.
    virtual void reduce_inner(ReduceOp op, const Tensor& x, int64_t inner, const Tensor& out,
                              const Tensor& argmax) = 0;

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
};

// The backend that runs tensors on `device`; throws td::Error if none is built in.
Backend& backend_for(Device device);
// Called once by a backend at start-up (the CPU backend registers itself).
void register_backend(Device device, Backend* backend);

}  // namespace td
