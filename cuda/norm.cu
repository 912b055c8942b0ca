// cuda/norm.cu: GroupNorm and LayerNorm, forward and backward. Twin of
// tensor/cpu/norm.cpp, same saved statistics and formulas:
//     xhat = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps)  (var: population variance)
//     y    = xhat * gamma + beta
//     dxhat = dy * gamma
// BEGIN HIDE groupnorm-backward
// STUB: //     dx    = (left out of this copy: the assignment groupnorm-backward derives it)
//     dx    = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))   (means over the block)
// END HIDE groupnorm-backward
//     dgamma = sum of dy * xhat,  dbeta = sum of dy   (over everything gamma was broadcast over)
// A "block" of the normalisation is D contiguous floats: a group (C/G channels x HW
// positions of one sample) for GroupNorm, a row of the last D elements for LayerNorm.
//
// Who computes what. One CUDA block per normalisation block (blockIdx.x = (n, g), or the
// row): its threads stride over the D elements (thread t takes t, t + blockDim, ...:
// neighbours read neighbours, so loads coalesce), each keeping a partial sum, and the
// block adds the partials up (warp shuffles, then the warp totals through shared
// memory). The block's size follows D (D rounded up to a warp, 32 to 512 threads): a
// LayerNorm row of 64 features gets 2 warps, not 16 of which 14 would idle.
//
// Mean and variance: two passes (the mean first, then the mean of (x - mean)^2), as the
// CPU does, not one pass of sum x and sum x^2: var = E[x^2] - E[x]^2 subtracts two large,
// nearly equal numbers when |mean| >> std, and in float that loses most of the digits
// (even negative variances). Welford's running update is stable in one pass, but it is
// a division per element and a harder merge rule to read; the second pass reads the
// block again, mostly from L2. Block sums are in float (the CPU sums in double), in a
// fixed order: results are the same on every run, within float rounding of the CPU's.
//
// Backward, deterministic (no float atomics, whose order of addition varies between runs):
//   GroupNorm: 1. one warp per (n, c) plane sums dy and dy * xhat over its HW positions
//                 -> part_b, part_g (N, C): dbeta's and dgamma's terms for sample n;
//              2. one block per (n, g) turns its channels' sums into the two block means
//                 (gamma is constant over a channel, so sum dy*gamma = sum_c gamma_c
//                 part_b[n, c], likewise for xhat) and writes dx elementwise;
//              3. dgamma[c] = sum over n of part_g[n, c], one thread per channel, in order.
//   LayerNorm: 1. one block per row: the two row sums, then dx elementwise;
//              2. one block per 64 rows: part_g, part_b (chunks, D) = that chunk's sums;
//              3. dgamma[d] = sum over chunks, one thread per feature, in order.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"

namespace td {

namespace {

constexpr int kMaxThreads = 512;
constexpr int64_t kRowsPerChunk = 64;  // LayerNorm's dgamma/dbeta partial sums: one per 64 rows, as the CPU

// Threads for a block that strides over D elements: D rounded up to a whole warp (the
// shuffles need every lane of a warp present), between 32 and kMaxThreads.
int threads_for(int64_t D) { return (int)std::min<int64_t>(kMaxThreads, std::max<int64_t>(32, (D + 31) / 32 * 32)); }

// Blocks of a grid with one block per item; a grid holds at most 2^31 - 1.
unsigned grid_of(int64_t items, const char* op) {
    check(items <= 2147483647LL, op, ": ", items, " blocks is more than one grid holds");
    return (unsigned)items;
}

// Sum of v over a warp, returned to every lane (butterfly: lane l adds lane l ^ 16, then
// l ^ 8, ...; after 5 steps every lane holds the total). The whole warp must call it.
__device__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// Sum of v over the block, returned to every thread. Every thread of the block must
// call it (it holds two __syncthreads). `scratch`: one float per warp, in shared memory.
__device__ float block_sum(float v, float* scratch) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();  // every warp's total is written
    float total = 0.0f;
    for (int w = 0; w < warps; ++w) total += scratch[w];  // the same order in every thread: the same bits
    __syncthreads();  // every thread has read scratch before the next call writes it
    return total;
}

// mean and rstd of the D contiguous floats at xb, by the whole block (two passes, see the top).
__device__ void block_moments(const float* xb, int64_t D, float eps, float* scratch, float& mean, float& rstd) {
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += xb[i];
    mean = block_sum(s, scratch) / (float)D;
    float q = 0.0f;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
        float d = xb[i] - mean;
        q += d * d;
    }
    float var = block_sum(q, scratch) / (float)D;
    rstd = 1.0f / sqrtf(var + eps);  // not rsqrtf: that one is an approximation (2 ulp)
}

// ---- GroupNorm ------------------------------------------------------------------------------
// x (N, C, HW) in G groups of Cg = C / G channels; block (n, g) is x[n, g Cg : (g+1) Cg, :],
// D = Cg * HW contiguous floats starting at (n C + g Cg) HW = (n G + g) D.

// One block per (n, g) = blockIdx.x. mean, rstd: (N, G).
__global__ void group_norm_forward_kernel(const float* x, const float* gamma, const float* beta, float eps, int64_t G,
                                          int64_t Cg, int64_t HW, float* y, float* mean, float* rstd) {
    __shared__ float scratch[32];
    const int64_t ng = blockIdx.x, g = ng % G, D = Cg * HW;
    const float* xb = x + ng * D;
    float* yb = y + ng * D;
    float mu, r;
    block_moments(xb, D, eps, scratch, mu, r);
    if (threadIdx.x == 0) {
        mean[ng] = mu;
        rstd[ng] = r;
    }
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
        int64_t c = g * Cg + i / HW;  // the channel of element i
        // the affine folded into one multiply-add, as on the CPU: y = x * scale + shift
        float scale = r * gamma[c], shift = beta[c] - mu * scale;
        yb[i] = xb[i] * scale + shift;
    }
}

// Backward step 1: one warp per (n, c) plane of HW floats; 8 warps per block. Lane l
// takes positions l, l + 32, ...; the warp's sums land in part_b, part_g at plane = n C + c.
// (The CPU forms sum dy * xhat as rstd (sum dy x - mean sum dy) in double; in float that
// difference cancels when |mean| >> std, so here each term is dy * xhat itself.)
__global__ void group_norm_plane_sums_kernel(const float* dy, const float* x, const float* mean, const float* rstd,
                                             int64_t planes, int64_t C, int64_t Cg, int64_t G, int64_t HW,
                                             float* part_g, float* part_b) {
    const int64_t plane = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
    if (plane >= planes) return;  // the whole warp leaves together: its shuffles stay complete
    const int lane = threadIdx.x % 32;
    const int64_t n = plane / C, c = plane % C, ng = n * G + c / Cg;
    const float m = mean[ng], r = rstd[ng];
    const float* xp = x + plane * HW;
    const float* dyp = dy + plane * HW;
    float sb = 0.0f, sg = 0.0f;  // sum dy, sum dy * xhat
    for (int64_t i = lane; i < HW; i += 32) {
        sb += dyp[i];
        sg += dyp[i] * ((xp[i] - m) * r);
    }
    sb = warp_sum(sb);
    sg = warp_sum(sg);
    if (lane == 0) {
        part_b[plane] = sb;
        part_g[plane] = sg;
    }
}

// Backward step 2: one block per (n, g) = blockIdx.x: the two block means, then dx.
__global__ void group_norm_dx_kernel(const float* dy, const float* x, const float* mean, const float* rstd,
                                     const float* gamma, const float* part_g, const float* part_b, int64_t G,
                                     int64_t Cg, int64_t HW, float* dx) {
    __shared__ float scratch[32];
    const int64_t ng = blockIdx.x, g = ng % G, D = Cg * HW;
    // sum dxhat = sum_c gamma_c sum dy,  sum dxhat xhat = sum_c gamma_c sum dy xhat;
    // the group's channels are planes ng Cg ... ng Cg + Cg - 1 of part_b, part_g.
    float a = 0.0f, b = 0.0f;
    for (int64_t c = threadIdx.x; c < Cg; c += blockDim.x) {
        float gam = gamma[g * Cg + c];
        a += gam * part_b[ng * Cg + c];
        b += gam * part_g[ng * Cg + c];
    }
    const float mean_dxhat = block_sum(a, scratch) / (float)D;
    const float mean_dxhat_xhat = block_sum(b, scratch) / (float)D;
    const float m = mean[ng], r = rstd[ng];
    const float* xb = x + ng * D;
    const float* dyb = dy + ng * D;
    float* dxb = dx + ng * D;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
        float gam = gamma[g * Cg + i / HW];
        float xhat = (xb[i] - m) * r;
        dxb[i] = r * (dyb[i] * gam - mean_dxhat - xhat * mean_dxhat_xhat);
    }
}

// out[j] = sum over i of part[i, j], part (rows, cols): one thread per column j, the rows
// added in order (in double, as the CPU). Consecutive threads read consecutive columns of
// a row, so each row's loads coalesce. Serves GroupNorm (rows = N) and LayerNorm (rows = chunks).
__global__ void column_sum_kernel(const float* part, int64_t rows, int64_t cols, float* out) {
    for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < cols; j += (int64_t)gridDim.x * blockDim.x) {
        double s = 0.0;
        for (int64_t i = 0; i < rows; ++i) s += part[i * cols + j];
        out[j] = (float)s;
    }
}

void launch_column_sum(const float* part, int64_t rows, int64_t cols, const Tensor& out) {
    if (!out.defined() || cols == 0) return;
    unsigned blocks = std::min<unsigned>(cuda::blocks_for(cols, 256), 4096);  // the loop strides past 4096
    column_sum_kernel<<<blocks, 256>>>(part, rows, cols, out.data_f32());
    cuda::check_launch("column_sum_kernel");
}

// ---- LayerNorm --------------------------------------------------------------------------------
// x (M, D), each row normalised; gamma, beta (D) or null (no affine).

// One block per row = blockIdx.x. mean, rstd: (M).
__global__ void layer_norm_forward_kernel(const float* x, const float* gamma, const float* beta, float eps, int64_t D,
                                          float* y, float* mean, float* rstd) {
    __shared__ float scratch[32];
    const int64_t row = blockIdx.x;
    const float* xr = x + row * D;
    float* yr = y + row * D;
    float mu, r;
    block_moments(xr, D, eps, scratch, mu, r);
    if (threadIdx.x == 0) {
        mean[row] = mu;
        rstd[row] = r;
    }
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
        float xhat = (xr[d] - mu) * r;
        yr[d] = xhat * (gamma ? gamma[d] : 1.0f) + (beta ? beta[d] : 0.0f);
    }
}

// Backward step 1: one block per row = blockIdx.x: the two row sums, then dx.
__global__ void layer_norm_dx_kernel(const float* dy, const float* x, const float* mean, const float* rstd,
                                     const float* gamma, int64_t D, float* dx) {
    __shared__ float scratch[32];
    const int64_t row = blockIdx.x;
    const float* xr = x + row * D;
    const float* dyr = dy + row * D;
    float* dxr = dx + row * D;
    const float mu = mean[row], r = rstd[row];
    float a = 0.0f, b = 0.0f;  // sum dxhat, sum dxhat * xhat
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
        float xhat = (xr[d] - mu) * r, dxhat = dyr[d] * (gamma ? gamma[d] : 1.0f);
        a += dxhat;
        b += dxhat * xhat;
    }
    const float mean_dxhat = block_sum(a, scratch) / (float)D;
    const float mean_dxhat_xhat = block_sum(b, scratch) / (float)D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
        float xhat = (xr[d] - mu) * r;
        dxr[d] = r * (dyr[d] * (gamma ? gamma[d] : 1.0f) - mean_dxhat - xhat * mean_dxhat_xhat);
    }
}

// Backward step 2: one block per chunk of kRowsPerChunk rows = blockIdx.x; thread t owns
// features d = t, t + blockDim, ... and walks the chunk's rows in order: part_g[chunk, d]
// = sum dy * xhat, part_b[chunk, d] = sum dy. A warp reads 32 consecutive features of a
// row at a time: coalesced.
__global__ void layer_norm_param_sums_kernel(const float* dy, const float* x, const float* mean, const float* rstd,
                                             int64_t M, int64_t D, float* part_g, float* part_b) {
    const int64_t chunk = blockIdx.x, m0 = chunk * kRowsPerChunk;
    const int64_t m1 = m0 + kRowsPerChunk < M ? m0 + kRowsPerChunk : M;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
        float sg = 0.0f, sb = 0.0f;
        for (int64_t m = m0; m < m1; ++m) {
            float g = dy[m * D + d];
            sg += g * ((x[m * D + d] - mean[m]) * rstd[m]);
            sb += g;
        }
        part_g[chunk * D + d] = sg;
        part_b[chunk * D + d] = sb;
    }
}

const float* ptr_or_null(const Tensor& t) { return t.defined() ? t.data_f32() : nullptr; }

}  // namespace

// ---- the backend's entry points ------------------------------------------------------------------

void CudaBackend::group_norm_forward(const Tensor& x, int64_t G, const Tensor& gamma, const Tensor& beta, float eps,
                                     const Tensor& y, const Tensor& mean, const Tensor& rstd) {
    const int64_t N = x.size(0), C = x.size(1);
    const int64_t HW = N * C == 0 ? 0 : x.numel() / (N * C), Cg = C / G;
    if (N * G == 0) return;  // no (n, g) blocks: mean and rstd are empty too
    group_norm_forward_kernel<<<grid_of(N * G, "group_norm"), threads_for(Cg * HW)>>>(
        x.data_f32(), gamma.data_f32(), beta.data_f32(), eps, G, Cg, HW, y.data_f32(), mean.data_f32(),
        rstd.data_f32());
    cuda::check_launch("group_norm_forward_kernel");
}

void CudaBackend::group_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                      const Tensor& gamma, int64_t G, const Tensor& dx, const Tensor& dgamma,
                                      const Tensor& dbeta) {
    const int64_t N = x.size(0), C = x.size(1);
    if (N * C == 0) {  // nothing to sum: dgamma = dbeta = 0 (dx is empty)
        if (dgamma.defined()) fill(dgamma, 0.0);
        if (dbeta.defined()) fill(dbeta, 0.0);
        return;
    }
    const int64_t HW = x.numel() / (N * C), Cg = C / G;
    Tensor part_g = Tensor::empty({N, C}, DType::Float32, Device::CUDA);  // per (n, c): sum dy * xhat
    Tensor part_b = Tensor::empty({N, C}, DType::Float32, Device::CUDA);  // per (n, c): sum dy
    const int warps_per_block = 8;
    group_norm_plane_sums_kernel<<<grid_of((N * C + warps_per_block - 1) / warps_per_block, "group_norm backward"),
                                   32 * warps_per_block>>>(dy.data_f32(), x.data_f32(), mean.data_f32(),
                                                           rstd.data_f32(), N * C, C, Cg, G, HW, part_g.data_f32(),
                                                           part_b.data_f32());
    cuda::check_launch("group_norm_plane_sums_kernel");
    if (dx.defined()) {
        group_norm_dx_kernel<<<grid_of(N * G, "group_norm backward"), threads_for(Cg * HW)>>>(
            dy.data_f32(), x.data_f32(), mean.data_f32(), rstd.data_f32(), gamma.data_f32(), part_g.data_f32(),
            part_b.data_f32(), G, Cg, HW, dx.data_f32());
        cuda::check_launch("group_norm_dx_kernel");
    }
    launch_column_sum(part_g.data_f32(), N, C, dgamma);  // dgamma (C) = sum over n
    launch_column_sum(part_b.data_f32(), N, C, dbeta);   // dbeta (C)
}

void CudaBackend::layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                     const Tensor& y, const Tensor& mean, const Tensor& rstd) {
    const int64_t M = mean.numel();
    if (M == 0) return;
    const int64_t D = x.numel() / M;
    layer_norm_forward_kernel<<<grid_of(M, "layer_norm"), threads_for(D)>>>(
        x.data_f32(), ptr_or_null(gamma), ptr_or_null(beta), eps, D, y.data_f32(), mean.data_f32(), rstd.data_f32());
    cuda::check_launch("layer_norm_forward_kernel");
}

void CudaBackend::layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                      const Tensor& gamma, const Tensor& dx, const Tensor& dgamma,
                                      const Tensor& dbeta) {
    const int64_t M = mean.numel();
    if (M == 0) {  // no rows: dgamma = dbeta = 0
        if (dgamma.defined()) fill(dgamma, 0.0);
        if (dbeta.defined()) fill(dbeta, 0.0);
        return;
    }
    const int64_t D = x.numel() / M;
    if (dx.defined()) {
        layer_norm_dx_kernel<<<grid_of(M, "layer_norm backward"), threads_for(D)>>>(
            dy.data_f32(), x.data_f32(), mean.data_f32(), rstd.data_f32(), ptr_or_null(gamma), D, dx.data_f32());
        cuda::check_launch("layer_norm_dx_kernel");
    }
    if ((!dgamma.defined() && !dbeta.defined()) || D == 0) return;
    const int64_t chunks = (M + kRowsPerChunk - 1) / kRowsPerChunk;
    Tensor part_g = Tensor::empty({chunks, D}, DType::Float32, Device::CUDA);  // per chunk: sum dy * xhat
    Tensor part_b = Tensor::empty({chunks, D}, DType::Float32, Device::CUDA);  // per chunk: sum dy
    layer_norm_param_sums_kernel<<<grid_of(chunks, "layer_norm backward"), threads_for(D)>>>(
        dy.data_f32(), x.data_f32(), mean.data_f32(), rstd.data_f32(), M, D, part_g.data_f32(), part_b.data_f32());
    cuda::check_launch("layer_norm_param_sums_kernel");
    launch_column_sum(part_g.data_f32(), chunks, D, dgamma);  // dgamma (D) = sum over chunks
    launch_column_sum(part_b.data_f32(), chunks, D, dbeta);   // dbeta (D)
}

}  // namespace td
