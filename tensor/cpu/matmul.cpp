// tensor/cpu/matmul.cpp: batched GEMM through Eigen.
//
// Each (M, K) matrix of a batch is handed to Eigen as a Map over our memory, no copy:
// row-major when its last dim has unit stride, column-major when its second-to-last
// has (that is a transposed view, as backward passes produce: dA = dY B^T). Eigen's
// GEMM packs panels into cache-sized blocks and runs AVX/FMA micro-kernels; with
// OpenMP on it also splits one large product across threads.
#include <Eigen/Core>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/error.h"

namespace td {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using RowMap = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
using ColMap = Eigen::Map<const ColMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
using OutMap = Eigen::Map<RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;

// A matrix of a batched (B, R, C) tensor: unit stride along its columns (row-major)
// or along its rows (column-major, a transposed view).
struct MatrixView {
    const float* data;
    int64_t rows, cols, batch_stride, outer_stride;
    bool row_major;
};

static MatrixView matrix_view(const Tensor& t) {
    const Shape& st = t.strides();
    MatrixView v{t.data_f32(), t.size(1), t.size(2), st[0], 0, true};
    if (st[2] == 1 || t.size(2) == 1) { v.row_major = true; v.outer_stride = std::max<int64_t>(st[1], v.cols); }
    else if (st[1] == 1 || t.size(1) == 1) { v.row_major = false; v.outer_stride = std::max<int64_t>(st[2], v.rows); }
    else fail("matmul kernel: operand with strides ", shape_str(st), " is neither row- nor column-major");
    return v;
}

static void gemm_one(const MatrixView& a, const MatrixView& b, int64_t batch, float* out, int64_t M, int64_t N) {
    OutMap c(out + batch * M * N, M, N, Eigen::OuterStride<>(N));
    const float* ad = a.data + batch * a.batch_stride;
    const float* bd = b.data + batch * b.batch_stride;
    // C = A B, for the four storage orders A and B can arrive in.
    if (a.row_major && b.row_major)
        c.noalias() = RowMap(ad, a.rows, a.cols, Eigen::OuterStride<>(a.outer_stride)) *
                      RowMap(bd, b.rows, b.cols, Eigen::OuterStride<>(b.outer_stride));
    else if (a.row_major)
        c.noalias() = RowMap(ad, a.rows, a.cols, Eigen::OuterStride<>(a.outer_stride)) *
                      ColMap(bd, b.rows, b.cols, Eigen::OuterStride<>(b.outer_stride));
    else if (b.row_major)
        c.noalias() = ColMap(ad, a.rows, a.cols, Eigen::OuterStride<>(a.outer_stride)) *
                      RowMap(bd, b.rows, b.cols, Eigen::OuterStride<>(b.outer_stride));
    else
        c.noalias() = ColMap(ad, a.rows, a.cols, Eigen::OuterStride<>(a.outer_stride)) *
                      ColMap(bd, b.rows, b.cols, Eigen::OuterStride<>(b.outer_stride));
}

// out (B, M, N) = a (B, M, K) @ b (B, K, N)
void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
    check(out.is_contiguous(), "matmul kernel: output must be contiguous");
    int64_t B = a.size(0), M = a.size(1), N = b.size(2);
    float* o = out.data_f32();
    if (a.size(2) == 0) { fill(out, 0.0); return; }  // an empty sum is 0
    if (M == 0 || N == 0) return;
    MatrixView av = matrix_view(a), bv = matrix_view(b);
    if (B == 1) { gemm_one(av, bv, 0, o, M, N); return; }  // Eigen threads the one product
    // Many products: one per thread (Eigen sees it is inside a parallel region and
    // does not split further).
#pragma omp parallel for
    for (int64_t i = 0; i < B; ++i) gemm_one(av, bv, i, o, M, N);
}

}  // namespace td
