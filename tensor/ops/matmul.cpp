// tensor/ops/matmul.cpp: (batched) matrix multiplication.
//
// y = a @ b with a: (..., M, K), b: (..., K, N) -> y: (..., M, N); the batch dims
// broadcast like elementwise ops. Backward (the two GEMMs every layer's backward is
// made of):
//     da = dy @ b^T   (..., M, N) x (..., N, K) -> (..., M, K)
//     db = a^T @ dy   (..., K, M) x (..., M, N) -> (..., K, N)
// summed back over any batch dims that broadcasting expanded.
#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td {

// The kernel takes 3-D operands whose matrices are row- or column-major; anything
// else (a 4-D permuted view, a stepped slice) is copied first.
static Tensor as_batched_matrices(const Tensor& t, const Shape& batch, int64_t rows, int64_t cols) {
    Shape full = batch;
    full.push_back(rows);
    full.push_back(cols);
    Tensor e = t.detach().expand(full);
    int64_t B = numel_of(batch);
    Shape st = e.strides();
    int64_t n = e.dim();
    // (a broadcast row or column dim, stride 0 with size > 1, is neither: it is copied)
    bool matrix_ok = (st[n - 1] == 1 || st[n - 2] == 1 || rows == 1 || cols == 1) && (rows == 1 || st[n - 2] != 0) &&
                     (cols == 1 || st[n - 1] != 0);
    // The batch dims must collapse into one: each non-1 batch dim steps exactly over
    // the next non-1 one (broadcast dims, stride 0, collapse only with each other).
    Shape live;  // the batch dims of size > 1
    for (int64_t d = 0; d < n - 2; ++d)
        if (e.size(d) != 1) live.push_back(d);
    bool batch_ok = true;
    for (size_t i = 0; i + 1 < live.size(); ++i)
        if (st[live[i]] != st[live[i + 1]] * e.size(live[i + 1])) batch_ok = false;
    if (!(matrix_ok && batch_ok)) e = e.contiguous();
    int64_t batch_stride = live.empty() ? 0 : e.strides()[live.back()];
    if (n == 2) batch_stride = rows * cols;  // one matrix; the stride is never used
    auto impl = std::make_shared<TensorImpl>(*e.impl());
    impl->grad_fn = nullptr;
    impl->requires_grad = false;
    impl->grad = nullptr;
    impl->shape = {B, rows, cols};
    impl->strides = {batch_stride, e.strides()[n - 2], e.strides()[n - 1]};
    impl->is_view = true;
    return Tensor(impl);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
    check(a.defined() && b.defined(), "matmul: undefined tensor");
    check(a.dtype() == DType::Float32 && b.dtype() == DType::Float32, "matmul: expected float32 tensors, got ",
          dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
    check(a.device() == b.device(), "matmul: tensors on different devices");
    check(a.dim() >= 2 && b.dim() >= 2, "matmul: both operands need at least 2 dims, got shapes ", a.shape(), " and ",
          b.shape());
    int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
    check(b.size(-2) == K, "matmul: inner dims differ: ", a.shape(), " @ ", b.shape(), " (", K, " vs ", b.size(-2),
          ")");
    Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
    Shape batch = broadcast_shapes(batch_a, batch_b, "matmul (batch dims)");

    Shape out_shape = batch;
    out_shape.push_back(M);
    out_shape.push_back(N);
    Tensor y = Tensor::empty(out_shape, DType::Float32, a.device());
    Tensor y3 = y.view({numel_of(batch), M, N});
    backend_for(a.device()).matmul(as_batched_matrices(a, batch, M, K), as_batched_matrices(b, batch, K, N), y3);

    return record("matmul", y, {a, b}, [a, b](const Tensor& dy) -> std::vector<Tensor> {
        Tensor da, db;
        if (a.requires_grad()) da = sum_to(matmul(dy, b.detach().transpose(-1, -2)), a.shape());
        if (b.requires_grad()) db = sum_to(matmul(a.detach().transpose(-1, -2), dy), b.shape());
        return {da, db};
    });
}

}  // namespace td
