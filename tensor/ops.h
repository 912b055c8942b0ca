// tensor/ops.h: every differentiable op of the engine, by family.
//
// Each op lives in tensor/ops/<family>.cpp: it checks its arguments (td::Error naming
// the op and the shapes), allocates the output, asks the backend of the input's device
// for the kernel, and records its backward with autograd::record right beside the
// forward. Families:
//   elementwise.cpp  add sub mul div pow neg exp log sqrt abs tanh sigmoid relu silu gelu softplus clamp where
//   reduce.cpp       sum mean var max argmax
//   matmul.cpp       matmul (batched, broadcasting batch dims)
//   views.cpp        view reshape permute transpose narrow slice expand squeeze unsqueeze contiguous
//   join.cpp         cat stack split chunk
//   index.cpp        index_select gather
//   factories.cpp    zeros ones full arange linspace rand randn (with a td::Generator)
#pragma once
#include "tensor/tensor.h"

namespace td {

// ---- elementwise, with NumPy/PyTorch broadcasting ---------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, float b);
Tensor mul(const Tensor& a, float b);
Tensor pow(const Tensor& a, float exponent);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor gelu(const Tensor& x);  // exact form: x * Phi(x), Phi the normal CDF (PyTorch's default)
// log(1 + e^(beta x)) / beta, a smooth relu; x itself where beta x > threshold (PyTorch's
// softplus, same defaults). beta must be > 0. (docs/add-an-op.md adds this op step by step.)
Tensor softplus(const Tensor& x, float beta = 1.0f, float threshold = 20.0f);
Tensor clamp(const Tensor& x, float lo, float hi);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond != 0 picks a
// comparisons: 1.0 where true, 0.0 where false; not differentiable
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, float b);
Tensor operator-(const Tensor& a, float b);
Tensor operator*(const Tensor& a, float b);
Tensor operator/(const Tensor& a, float b);
Tensor operator+(float a, const Tensor& b);
Tensor operator-(float a, const Tensor& b);
Tensor operator*(float a, const Tensor& b);

// The shape two shapes broadcast to; throws naming `op` when they cannot.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Sums `g` down to `shape` over the dims broadcasting expanded (the backward of
// broadcasting): sum_to(g (2,3,4), [3,1]) sums dim 0 and dim 2 (keepdim).
Tensor sum_to(const Tensor& g, const Shape& shape);

// ---- reductions ----------------------------------------------------------------------
// dims empty = all dims. keepdim keeps reduced dims as size 1.
Tensor sum(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
// correction = 1: unbiased (PyTorch's default), 0: population variance
Tensor var(const Tensor& x, const Shape& dims = {}, bool keepdim = false, int64_t correction = 1);
struct MaxResult {
    Tensor values;   // float32
    Tensor indices;  // int64, position along `dim` of the (first) maximum
};
MaxResult max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);  // over all elements, a 0-d tensor
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

// ---- matmul --------------------------------------------------------------------------
// a: (..., M, K) @ b: (..., K, N) -> (..., M, N); batch dims broadcast. Both >= 2-D.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- join and split ------------------------------------------------------------------
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim);  // last piece may be smaller
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim);

// ---- indexing ------------------------------------------------------------------------
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);  // index: 1-D int64
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);        // index: int64, x's rank

// ---- factories -----------------------------------------------------------------------
// Each makes its tensor on `device` (the CPU unless asked); the *_like ones on x's device,
// in x's shape. Code that works on a tensor's behalf (a backward pass, a loss) passes that
// tensor's device, so nothing lands on the CPU when its inputs live on the GPU.
Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::CPU);
Tensor ones(const Shape& shape, Device device = Device::CPU);
Tensor full(const Shape& shape, float value, Device device = Device::CPU);
Tensor zeros_like(const Tensor& x);  // x's dtype too
Tensor ones_like(const Tensor& x);
Tensor arange(float start, float end, float step = 1.0f, Device device = Device::CPU);  // [start, end)
Tensor arange_i64(int64_t end, Device device = Device::CPU);                            // 0, 1, ..., end - 1 as int64
Tensor linspace(float start, float end, int64_t steps, Device device = Device::CPU);
Tensor scalar_tensor(float value, Device device = Device::CPU);  // a 0-d tensor

}  // namespace td
