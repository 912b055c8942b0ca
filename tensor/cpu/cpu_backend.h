// tensor/cpu/cpu_backend.h: the CPU backend, the engine's readable reference.
// Its kernels are spread over one file per op family:
//   memory.cpp       allocate, copy (strided, converting dtype), fill
//   elementwise.cpp  unary (forward and derivative side by side), binary, where
//   reduce.cpp       sum / max over the innermost block
//   matmul.cpp       batched GEMM through Eigen
//   index.cpp        index_select / index_add, gather / scatter_add
// Parallelism is OpenMP over independent rows. Elementwise ops, reductions (fixed-size
// chunks summed in a fixed order) and random numbers give the same bits for any thread
// count; a single large square GEMM does not (Eigen's blocking depends on the thread
// count), so bitwise reproducibility holds for the same thread count.
#pragma once
#include "tensor/backend.h"

namespace td {

struct CpuBackend final : Backend {
    const char* name() const override { return "cpu"; }
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

}  // namespace td
