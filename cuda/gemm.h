// cuda/gemm.h: the GEMM every matrix-shaped kernel of the CUDA backend calls (matmul,
// conv2d through im2col, attention's products), implemented in cuda/matmul.cu as a
// ladder of kernels (naive, shared-memory tiled, register-blocked, tensor cores).
//
// All pointers are device pointers to float32, row-major. For each b < batch:
//   C_b (M x N) = op(A_b) (M x K) * op(B_b) (K x N) + beta * C_b
// where op(X) = X, or X^T when trans_x: then A_b is stored K x M (B_b: N x K).
// Element (i, j) of a stored matrix X_b is X[b * stride_x + i * ld_x + j].
// beta = 0 never reads C (it may hold garbage or NaN).
//
// Any M, N, K, batch >= 0; K = 0 gives C = beta C. ld_x must be at least the stored row
// length (unless the matrix has one row); no alignment is required of any pointer or ld.
// stride_a or stride_b may be 0 (one matrix for the whole batch); the C_b must not
// overlap each other, A or B. Misuse throws td::Error naming the argument. The kernels
// run on the default stream: gemm() returns before the GPU has finished.
//
// gemm() uses v3, the register-blocked kernel (exact FP32 arithmetic), unless the
// environment variable TD_CUDA_TF32=1 was set when the first gemm() ran: then it uses v4,
// tensor cores with inputs rounded to TF32 (10-bit mantissa): built for speed on large
// products, at a relative error around 1e-3 (PyTorch's allow_tf32 flag does the same).
#pragma once
#include <cstdint>

namespace td::cuda {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,  //
          const float* A, int64_t lda, int64_t stride_a,                //
          const float* B, int64_t ldb, int64_t stride_b,                //
          float* C, int64_t ldc, int64_t stride_c, int64_t batch, float beta);

// Which rung of the ladder to run; the bench and the tests run each one. Best is what
// gemm() does (v3, or v4 with TD_CUDA_TF32=1). TensorCoreTF32 needs compute capability 8.0+.
enum class GemmKernel { Naive, Tiled, RegisterBlocked, TensorCoreTF32, Best };
void gemm_with(GemmKernel kernel, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,  //
               const float* A, int64_t lda, int64_t stride_a,                                   //
               const float* B, int64_t ldb, int64_t stride_b,                                   //
               float* C, int64_t ldc, int64_t stride_c, int64_t batch, float beta);

}  // namespace td::cuda
