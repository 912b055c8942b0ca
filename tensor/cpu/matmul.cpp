// tensor/cpu/matmul.cpp: batched GEMM through Eigen.
//
// Each (M, K) matrix of a batch is handed to Eigen as a Map over our memory, no copy:
// row-major when its last dim has unit stride, column-major when its second-to-last
// has (that is a transposed view, as backward passes produce: dA = dY B^T). Eigen's
// GEMM packs panels into cache-sized blocks and runs AVX/FMA micro-kernels; with
// OpenMP on it also splits one large product across threads.
//
// Except for short-and-wide products (a convolution as GEMM: M = Cout, N = batch*H*W)
// and their transposes: there Eigen's threaded path sizes its shared packed block to all
// of N (a 128 MB buffer for 64 x 576 x 100352, allocated and page-faulted every call,
// then streamed from memory) and runs no faster than one thread does. We split the long
// dimension ourselves into fixed 1024-wide pieces instead, one Eigen product per piece
// on one thread (Eigen does not thread again inside our parallel region). Fixed pieces
// also make these results independent of the thread count.
#include <Eigen/Core>
#include <algorithm>

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
    if (st[2] == 1 || t.size(2) == 1) {
        v.row_major = true;
        v.outer_stride = std::max<int64_t>(st[1], v.cols);
    } else if (st[1] == 1 || t.size(1) == 1) {
        v.row_major = false;
        v.outer_stride = std::max<int64_t>(st[2], v.rows);
    } else fail("matmul kernel: operand with strides ", shape_str(st), " is neither row- nor column-major");
    return v;
}

// c = a b, c a (rows x cols) window of a row-major output with row stride ldc.
static void gemm_into(const MatrixView& a, const MatrixView& b, float* out, int64_t ldc) {
    OutMap c(out, a.rows, b.cols, Eigen::OuterStride<>(ldc));
    const float* ad = a.data;
    const float* bd = b.data;
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
    if (a.size(2) == 0) {
        fill(out, 0.0);
        return;
    }  // an empty sum is 0
    if (M == 0 || N == 0) return;
    MatrixView av = matrix_view(a), bv = matrix_view(b);
    if (B == 1) {
        constexpr int64_t kPiece = 1024;  // columns (or rows) of C per piece
        if (N >= 4 * M && N > kPiece) {   // short and wide: pieces of C's columns
#pragma omp parallel for schedule(dynamic, 1)
            for (int64_t n0 = 0; n0 < N; n0 += kPiece) {
                MatrixView bp = bv;
                bp.cols = std::min(kPiece, N - n0);
                bp.data += bv.row_major ? n0 : n0 * bv.outer_stride;
                gemm_into(av, bp, o + n0, N);
            }
        } else if (M >= 4 * N && M > kPiece) {  // tall and thin: pieces of C's rows
#pragma omp parallel for schedule(dynamic, 1)
            for (int64_t m0 = 0; m0 < M; m0 += kPiece) {
                MatrixView ap = av;
                ap.rows = std::min(kPiece, M - m0);
                ap.data += av.row_major ? m0 * av.outer_stride : m0;
                gemm_into(ap, bv, o + m0 * N, N);
            }
        } else {
            gemm_into(av, bv, o, N);  // Eigen threads the one product
        }
        return;
    }
    // Many products: one per thread (Eigen sees it is inside a parallel region and
    // does not split further).
#pragma omp parallel for
    for (int64_t i = 0; i < B; ++i) {
        MatrixView ai = av, bi = bv;
        ai.data += i * av.batch_stride;
        bi.data += i * bv.batch_stride;
        gemm_into(ai, bi, o + i * M * N, N);
    }
}

}  // namespace td
