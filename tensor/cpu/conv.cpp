// tensor/cpu/conv.cpp: the convolution family on the CPU: conv2d forward and backward
// (im2col + Eigen GEMM), avg_pool2d and upsample_nearest2d.
//
// A convolution is a matrix product in disguise. For one sample n and one group of
// channels, copy every R x S input patch that the kernel visits into a column:
//     cols (C/G * R * S, OH * OW)        im2col: row (c, r, s), column (oh, ow)
// Then the whole convolution of that sample is one GEMM with the weights viewed as a
// matrix (K/G, C/G * R * S):
//     y (K/G, OH * OW) = W (K/G, C/G*R*S) @ cols (C/G*R*S, OH*OW)  (+ bias per row)
// and the backward pass is two more GEMMs and the inverse copy (col2im):
//     dcols (C/G*R*S, OH*OW) = W^T @ dy (K/G, OH*OW)     then dx = col2im(dcols)
//     dW (K/G, C/G*R*S)     += dy (K/G, OH*OW) @ cols^T (OH*OW, C/G*R*S)   (summed over n)
//     db (K)                 = sum of dy over n, oh, ow
// (Chellapilla, Puri & Simard 2006; Caffe made it the standard CPU convolution.)
//
// Parallelism: OpenMP over the batch (and groups); each thread owns one column buffer
// the size of ONE sample's cols, never a (N, C*R*S, OH*OW) buffer for the whole batch.
// Eigen's GEMM runs single-threaded inside our parallel region, so every product is
// computed the same way whatever the thread count. dW is a sum over the batch: it is
// accumulated per fixed piece of the batch (pieces depend on N only), and the pieces
// are added in order at the end, so dW too has the same bits for 1 or 16 threads.
//
// The layouts, all contiguous row-major (the op in tensor/ops/conv.cpp made them so):
//     x (N, C, H, W), w (K, C/G, R, S) = G blocks of (K/G, C/G*R*S), y (N, K, OH, OW)
#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <vector>

#include "tensor/cpu/conv_fast.h"
#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/lane_sum.h"
#include "tensor/error.h"

namespace td {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<RowMatrix>;             // a row-major matrix over our memory
using ConstMatrixMap = Eigen::Map<const RowMatrix>;  // the same, read-only

// ---- the fast-path switch (conv_fast.h) ---------------------------------------------------

static bool g_fast_paths = true;
void set_conv_fast_paths(bool on) { g_fast_paths = on; }
bool conv_fast_paths_enabled() { return g_fast_paths; }

// ---- helpers ----------------------------------------------------------------------------

// A growable buffer per thread and slot, kept between calls (conv_fast.h; here slot 0 holds
// cols, slot 1 dcols). The OpenMP threads live as long as the program, so a training step
// reuses the same memory instead of allocating and page-faulting megabytes at every
// convolution. The fast paths use the same buffers: no two convolutions run at once.
float* conv_thread_buffer(int slot, int64_t floats) {
    thread_local std::vector<float> buffers[kConvThreadBuffers];
    if ((int64_t)buffers[slot].size() < floats) buffers[slot].resize(floats);
    return buffers[slot].data();
}

// The output columns ow whose input column iw = ow * stride - pad + s lies inside
// [0, W): ow in [lo, hi). Outside that range the patch reads zero padding.
static void valid_range(int64_t s, int64_t W, int64_t OW, int64_t stride, int64_t pad, int64_t& lo, int64_t& hi) {
    lo = 0;
    while (lo < OW && lo * stride - pad + s < 0) ++lo;
    hi = OW;
    while (hi > lo && (hi - 1) * stride - pad + s >= W) --hi;
}

// A 1x1 convolution with stride 1 and no padding needs no im2col: x of one sample,
// (C/G, H*W), already is its cols matrix.
static bool cols_is_input(const Conv2dShape& g) { return g.R == 1 && g.S == 1 && g.stride == 1 && g.pad == 0; }

// im2col for one sample and one group.
// x: (Cg, H, W), the group's channels of one sample; cols: (Cg*R*S, OH*OW).
// Row (c, r, s) of cols holds, for every output position (oh, ow), the input pixel that
// kernel tap (r, s) of channel c sees there: x[c, oh*stride - pad + r, ow*stride - pad + s],
// or 0 where that falls in the padding. Rows are written one after another, so the
// writes stream through memory; each row reads one channel plane, which stays in cache.
static void im2col(const float* x, const Conv2dShape& g, int64_t Cg, float* cols) {
    const int64_t H = g.H, W = g.W, OH = g.OH, OW = g.OW;
    for (int64_t c = 0; c < Cg; ++c) {
        const float* plane = x + c * H * W;  // (H, W)
        for (int64_t r = 0; r < g.R; ++r) {
            for (int64_t s = 0; s < g.S; ++s) {
                float* row = cols + ((c * g.R + r) * g.S + s) * OH * OW;  // (OH, OW)
                int64_t lo, hi;
                valid_range(s, W, OW, g.stride, g.pad, lo, hi);
                for (int64_t oh = 0; oh < OH; ++oh) {
                    float* dst = row + oh * OW;  // (OW)
                    int64_t ih = oh * g.stride - g.pad + r;
                    if (ih < 0 || ih >= H) {  // a padding row: all zeros
                        std::fill(dst, dst + OW, 0.0f);
                        continue;
                    }
                    const float* src = plane + ih * W;  // x[c, ih, :]
                    for (int64_t ow = 0; ow < lo; ++ow) dst[ow] = 0.0f;
                    if (g.stride == 1)  // neighbouring outputs read neighbouring inputs: one block copy
                        std::copy(src + (lo - g.pad + s), src + (hi - g.pad + s), dst + lo);
                    else
                        for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g.stride - g.pad + s];
                    for (int64_t ow = hi; ow < OW; ++ow) dst[ow] = 0.0f;
                }
            }
        }
    }
}

// col2im, the adjoint of im2col: every entry of cols is added back onto the input
// pixel it was copied from (pixels seen by several taps collect several terms).
// cols: (Cg*R*S, OH*OW) -> x: (Cg, H, W), overwritten.
static void col2im(const float* cols, const Conv2dShape& g, int64_t Cg, float* x) {
    const int64_t H = g.H, W = g.W, OH = g.OH, OW = g.OW;
    std::fill(x, x + Cg * H * W, 0.0f);
    for (int64_t c = 0; c < Cg; ++c) {
        float* plane = x + c * H * W;  // (H, W)
        for (int64_t r = 0; r < g.R; ++r) {
            for (int64_t s = 0; s < g.S; ++s) {
                const float* row = cols + ((c * g.R + r) * g.S + s) * OH * OW;  // (OH, OW)
                int64_t lo, hi;
                valid_range(s, W, OW, g.stride, g.pad, lo, hi);
                for (int64_t oh = 0; oh < OH; ++oh) {
                    int64_t ih = oh * g.stride - g.pad + r;
                    if (ih < 0 || ih >= H) continue;  // that row of the patch was padding
                    float* dst = plane + ih * W;      // x[c, ih, :]
                    const float* src = row + oh * OW;
                    if (g.stride == 1) {  // unit stride, written out so the compiler vectorises it
                        const int64_t shift = s - g.pad;
                        for (int64_t ow = lo; ow < hi; ++ow) dst[ow + shift] += src[ow];
                    } else {
                        for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g.stride - g.pad + s] += src[ow];
                    }
                }
            }
        }
    }
}

// ---- conv2d forward ---------------------------------------------------------------------

// y (N, K, OH, OW) = conv(x (N, C, H, W), w (K, C/G, R, S)) + bias (K)
void CpuBackend::conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                                const Conv2dShape& g) {
    const int64_t G = g.groups, Cg = g.C / G, Kg = g.K / G;
    const int64_t CRS = Cg * g.R * g.S;  // rows of cols = columns of the weight matrix
    const int64_t P = g.OH * g.OW;       // output positions per channel = columns of cols
    const bool direct = cols_is_input(g);
    const float* xp = x.data_f32();
    const float* wp = w.data_f32();
    const float* bp = bias.defined() ? bias.data_f32() : nullptr;
    float* yp = y.data_f32();
    if (conv3x3_fast_path_applies(g)) return conv3x3_forward(xp, wp, bp, yp, g);
    if (conv3x3_s2_fast_path_applies(g)) return conv3x3_s2_forward(xp, wp, bp, yp, g);
    if (conv1x1_fast_path_applies(g)) return conv1x1_forward(xp, wp, bp, yp, g);
        // One work item per (sample, group): each is an independent GEMM writing its own
        // block of y, so threads never touch the same memory.
#pragma omp parallel
    {
        float* cols = direct ? nullptr : conv_thread_buffer(0, CRS * P);  // (CRS, P), this thread's own
#pragma omp for schedule(static)
        for (int64_t item = 0; item < g.N * G; ++item) {
            int64_t n = item / G, grp = item % G;
            const float* xg = xp + (n * g.C + grp * Cg) * g.H * g.W;  // (Cg, H, W)
            float* yg = yp + (n * g.K + grp * Kg) * P;                // (Kg, P)
            if (!direct) im2col(xg, g, Cg, cols);
            ConstMatrixMap Wg(wp + grp * Kg * CRS, Kg, CRS);  // (Kg, CRS)
            ConstMatrixMap X(direct ? xg : cols, CRS, P);     // (CRS, P)
            MatrixMap Y(yg, Kg, P);                           // (Kg, P)
            // start each output row at its bias, then accumulate the product onto it
            for (int64_t k = 0; k < Kg; ++k) std::fill(yg + k * P, yg + (k + 1) * P, bp ? bp[grp * Kg + k] : 0.0f);
            Y.noalias() += Wg * X;
        }
    }
}

// ---- conv2d backward --------------------------------------------------------------------

static constexpr int64_t kMaxBatchPieces = 16;  // dW partial sums: at most 16 pieces of the batch

// dx (N, C, H, W), dw (K, C/G, R, S), db (K) from dy (N, K, OH, OW). Any of the three
// may be undefined (not needed); then it is not computed, and x may be undefined
// when dw is (conv_transpose2d's forward asks for dx alone).
void CpuBackend::conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx, const Tensor& dw,
                                 const Tensor& db, const Conv2dShape& g) {
    const int64_t N = g.N, G = g.groups, Cg = g.C / G, Kg = g.K / G;
    const int64_t CRS = Cg * g.R * g.S, P = g.OH * g.OW;
    const bool direct = cols_is_input(g);
    const float* wp = w.data_f32();
    const float* dyp = dy.data_f32();

    // The batch is cut into `pieces` runs of consecutive samples for the sums over it (see below).
    const int64_t pieces = dw.defined() ? std::min(N, kMaxBatchPieces) : N;
    // The fast paths compute db as well, in the same pass over dy.
    if (dx.defined() || dw.defined()) {
        const float* xf = x.defined() ? x.data_f32() : nullptr;
        float* dxf = dx.defined() ? dx.data_f32() : nullptr;
        float* dwf = dw.defined() ? dw.data_f32() : nullptr;
        float* dbf = db.defined() ? db.data_f32() : nullptr;
        if (conv3x3_fast_path_applies(g, dxf != nullptr))
            return conv3x3_backward(xf, wp, dyp, dxf, dwf, dbf, g, pieces);
        if (conv3x3_s2_fast_path_applies(g)) return conv3x3_s2_backward(xf, wp, dyp, dxf, dwf, dbf, g, pieces);
        if (conv1x1_fast_path_applies(g)) return conv1x1_backward(xf, wp, dyp, dxf, dwf, dbf, g, pieces);
    }

    // db[k] = sum over n and positions of dy[n, k, :, :]; one thread per channel, each
    // summing in the same order (n, then position) in double.
    if (db.defined()) {
        float* dbp = db.data_f32();
#pragma omp parallel for schedule(static)
        for (int64_t k = 0; k < g.K; ++k) {
            double s = 0.0;
            for (int64_t n = 0; n < N; ++n) s += lane_sum(dyp + (n * g.K + k) * P, P);
            dbp[k] = (float)s;
        }
    }
    if (!dx.defined() && !dw.defined()) return;
    if (dw.defined() && N == 0) std::fill(dw.data_f32(), dw.data_f32() + dw.numel(), 0.0f);
    if (N == 0) return;

    // The batch is cut into `pieces` runs of consecutive samples, a function of N alone.
    // Each piece accumulates its own dW in partial[piece]: (K, CRS), the G blocks
    // (Kg, CRS) side by side as in w. The loop over pieces is the parallel one, and a
    // piece's samples run on one thread in order, so each partial is the same sequence
    // of += whatever the thread count (per-thread partials would depend on how many
    // threads share the batch). dx needs no sum across samples: without dW, one piece
    // per sample.
    std::vector<float> partial(dw.defined() ? pieces * g.K * CRS : 0, 0.0f);  // (pieces, K, CRS)
    const float* xp = x.defined() ? x.data_f32() : nullptr;
    float* dxp = dx.defined() ? dx.data_f32() : nullptr;
#pragma omp parallel
    {
        float* cols = (dw.defined() && !direct) ? conv_thread_buffer(0, CRS * P) : nullptr;   // (CRS, P)
        float* dcols = (dx.defined() && !direct) ? conv_thread_buffer(1, CRS * P) : nullptr;  // (CRS, P)
#pragma omp for schedule(static)
        for (int64_t piece = 0; piece < pieces; ++piece) {
            // samples [n0, n1) of this piece (sizes differ by at most one)
            int64_t n0 = piece * N / pieces, n1 = (piece + 1) * N / pieces;
            for (int64_t n = n0; n < n1; ++n) {
                for (int64_t grp = 0; grp < G; ++grp) {
                    ConstMatrixMap Wg(wp + grp * Kg * CRS, Kg, CRS);            // (Kg, CRS)
                    ConstMatrixMap dYg(dyp + (n * g.K + grp * Kg) * P, Kg, P);  // (Kg, P)
                    int64_t x_off = (n * g.C + grp * Cg) * g.H * g.W;           // x[n, grp*Cg]: (Cg, H, W)
                    if (dw.defined()) {
                        // dW_g (Kg, CRS) += dY_g (Kg, P) @ cols^T (P, CRS)
                        if (!direct) im2col(xp + x_off, g, Cg, cols);
                        ConstMatrixMap X(direct ? xp + x_off : cols, CRS, P);  // (CRS, P)
                        MatrixMap dWg(partial.data() + (piece * g.K + grp * Kg) * CRS, Kg, CRS);
                        dWg.noalias() += dYg * X.transpose();
                    }
                    if (dx.defined()) {
                        // dcols (CRS, P) = W_g^T (CRS, Kg) @ dY_g (Kg, P), then dx = col2im(dcols)
                        if (direct) {  // cols was x itself: dcols is dx
                            MatrixMap dX(dxp + x_off, CRS, P);
                            dX.noalias() = Wg.transpose() * dYg;
                        } else {
                            MatrixMap dC(dcols, CRS, P);
                            dC.noalias() = Wg.transpose() * dYg;
                            col2im(dcols, g, Cg, dxp + x_off);
                        }
                    }
                }
            }
        }
    }
    if (!dw.defined()) return;
    // dw = partial[0] + partial[1] + ... in that order (in double), whatever the threads did.
    float* dwp = dw.data_f32();
    const int64_t numel = g.K * CRS;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < numel; ++i) {
        double s = 0.0;
        for (int64_t piece = 0; piece < pieces; ++piece) s += partial[piece * numel + i];
        dwp[i] = (float)s;
    }
}

// ---- avg_pool2d: y (N, C, H/k, W/k) = mean of each k x k window (stride k) ---------------

void CpuBackend::avg_pool2d(const Tensor& x, int64_t k, const Tensor& y) {
    const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3), OH = H / k, OW = W / k;
    const float* xp = x.data_f32();
    float* yp = y.data_f32();
    const float scale = 1.0f / (float)(k * k);
#pragma omp parallel for schedule(static) if (planes * H * W > 32768)
    for (int64_t pl = 0; pl < planes; ++pl) {  // one (H, W) plane per (n, c)
        const float* xi = xp + pl * H * W;
        float* yo = yp + pl * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
                float s = 0.0f;
                for (int64_t i = 0; i < k; ++i)
                    for (int64_t j = 0; j < k; ++j) s += xi[(oh * k + i) * W + ow * k + j];
                yo[oh * OW + ow] = s * scale;
            }
    }
}

// dx[ih, iw] = dy[ih / k, iw / k] / k^2: each input pixel had weight 1 / k^2 in one window.
void CpuBackend::avg_pool2d_backward(const Tensor& dy, int64_t k, const Tensor& dx) {
    const int64_t planes = dx.size(0) * dx.size(1), H = dx.size(2), W = dx.size(3), OH = H / k, OW = W / k;
    const float* dyp = dy.data_f32();
    float* dxp = dx.data_f32();
    const float scale = 1.0f / (float)(k * k);
#pragma omp parallel for schedule(static) if (planes * H * W > 32768)
    for (int64_t pl = 0; pl < planes; ++pl)
        for (int64_t ih = 0; ih < H; ++ih)
            for (int64_t iw = 0; iw < W; ++iw)
                dxp[(pl * H + ih) * W + iw] = dyp[(pl * OH + ih / k) * OW + iw / k] * scale;
}

// ---- upsample_nearest2d: y (N, C, H*s, W*s), y[oh, ow] = x[oh / s, ow / s] ---------------

void CpuBackend::upsample_nearest2d(const Tensor& x, int64_t s, const Tensor& y) {
    const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3), OH = H * s, OW = W * s;
    const float* xp = x.data_f32();
    float* yp = y.data_f32();
#pragma omp parallel for schedule(static) if (planes * OH * OW > 32768)
    for (int64_t pl = 0; pl < planes; ++pl)
        for (int64_t ih = 0; ih < H; ++ih) {
            // output row ih * s is input row ih with every pixel repeated s times; the
            // other s - 1 output rows of the block are copies of it (no division per pixel)
            const float* src = xp + (pl * H + ih) * W;
            float* row = yp + (pl * OH + ih * s) * OW;
            for (int64_t iw = 0; iw < W; ++iw)
                for (int64_t j = 0; j < s; ++j) row[iw * s + j] = src[iw];
            for (int64_t i = 1; i < s; ++i) std::copy(row, row + OW, row + i * OW);
        }
}

// dx[ih, iw] = sum of dy over the s x s block that pixel was copied to.
void CpuBackend::upsample_nearest2d_backward(const Tensor& dy, int64_t s, const Tensor& dx) {
    const int64_t planes = dx.size(0) * dx.size(1), H = dx.size(2), W = dx.size(3), OH = H * s, OW = W * s;
    const float* dyp = dy.data_f32();
    float* dxp = dx.data_f32();
#pragma omp parallel for schedule(static) if (planes * OH * OW > 32768)
    for (int64_t pl = 0; pl < planes; ++pl)
        for (int64_t ih = 0; ih < H; ++ih)
            for (int64_t iw = 0; iw < W; ++iw) {
                float sum = 0.0f;
                for (int64_t i = 0; i < s; ++i)
                    for (int64_t j = 0; j < s; ++j) sum += dyp[(pl * OH + ih * s + i) * OW + iw * s + j];
                dxp[(pl * H + ih) * W + iw] = sum;
            }
}

}  // namespace td
