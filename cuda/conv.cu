// cuda/conv.cu: the convolution family on the GPU: conv2d forward and backward (im2col +
// the GEMM of cuda/gemm.h), avg_pool2d and upsample_nearest2d. Twin of
// tensor/cpu/conv.cpp: the same matrices, the same overwrite rules, the same edge cases.
//
// A convolution is a matrix product in disguise. For one sample n and one group of
// channels, copy every R x S input patch the kernel visits into a column:
//     cols (C/G * R * S, OH * OW)        im2col: row (c, r, s), column (oh, ow)
// Then the convolution of that sample is one GEMM with the weights viewed as a matrix:
//     y (K/G, OH*OW) = W (K/G, C/G*R*S) @ cols (C/G*R*S, OH*OW)   (+ bias per row)
// and the backward pass is two more GEMMs and the inverse copy (col2im):
//     dcols (C/G*R*S, OH*OW) = W^T @ dy (K/G, OH*OW)     then dx = col2im(dcols)
//     dW (K/G, C/G*R*S)      = sum over n of dy (K/G, OH*OW) @ cols^T (OH*OW, C/G*R*S)
//     db (K)                 = sum of dy over n, oh, ow
//
// What is new on the GPU is only how the work is spread over threads:
// - im2col, col2im and the small kernels give one thread to each element they write
//   (grid-stride loops, int64 indices: a column buffer passes 2^31 floats easily).
// - The GEMMs run batched over a chunk of samples (the weights are the same matrix for
//   every sample: batch stride 0), one call per group (groups are strided pointers into
//   the same buffers).
// - The batch is processed in chunks so that the column buffer stays bounded: a chunk
//   holds as many samples as fit in kColsBudget floats (128 MiB), at least one. One
//   sample's cols is C*R*S*OH*OW floats, 590k for a 64-channel 3x3 conv of 32x32: 56
//   samples per chunk.
// - dW is a sum over the batch. Rather than summing per-sample products, the chunk's
//   cols are laid out (C*R*S, samples, OH*OW) and dy is copied to (K, samples, OH*OW),
//   so the sum over samples and positions is the inner dimension of ONE GEMM per group;
//   chunks then add onto dW in order. That GEMM is long and thin: (K/G) x (C/G*R*S)
//   outputs, 1 to 72 tiles of 128 x 128 for the UNet's convs, over an inner dimension of
//   up to millions. One block per tile would leave most of the GPU's 132 SMs idle, so the
//   inner dimension is cut into pieces (split-K, cuda/split_plan.h): one batched GEMM
//   computes every piece's partial dW side by side, and a small kernel adds the partials
//   up in piece order. No atomics anywhere, so every run gives the same bits.
//
// The layouts, all contiguous row-major (tensor/ops/conv.cpp made them so):
//     x (N, C, H, W), w (K, C/G, R, S) = G blocks of (K/G, C/G*R*S), y (N, K, OH, OW)
#include <algorithm>
#include <cstdint>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/gemm.h"
#include "cuda/split_plan.h"

namespace td {

namespace {

constexpr int kThreads = 256;                       // 8 warps: any GPU runs it, enough to hide memory latency
constexpr int64_t kColsBudget = int64_t(32) << 20;  // floats of column buffers per chunk: 128 MiB

// Blocks for a grid-stride loop over n > 0 items.
unsigned grid_for(int64_t n) { return cuda::grid_stride_blocks(n, kThreads); }

// A 1x1 convolution with stride 1 and no padding needs no im2col: x of one sample,
// (C, H*W), already is its cols matrix (H*W = OH*OW).
bool cols_is_input(const Conv2dShape& g) { return g.R == 1 && g.S == 1 && g.stride == 1 && g.pad == 0; }

// ---- im2col: the input patches as columns ----------------------------------------------------
//
// cols of nb samples starting at x (nb, C, H, W). Element (n, row, p) of cols, with
// row = (c, r, s) over all C channels and p = (oh, ow), lives at
//     cols[n * stride_n + row * stride_row + p]
// so one kernel writes both layouts conv needs: (nb, C*R*S, P) for the forward's batched
// GEMM (stride_n = C*R*S*P, stride_row = P) and (C*R*S, nb, P) for dW's single GEMM
// (stride_n = P, stride_row = nb*P). Its value is x[n, c, oh*stride - pad + r,
// ow*stride - pad + s], or 0 where that falls in the padding.
// Thread i writes the element whose index in (n, c, r, s, oh, ow) order is i: ow is the
// fastest, so a warp writes 32 consecutive floats of a row (p has unit stride in both
// layouts) and, at stride 1, reads 32 consecutive floats of an input row.
__global__ void im2col_kernel(const float* x, Conv2dShape g, int64_t nb, float* cols, int64_t stride_n,
                              int64_t stride_row) {
    const int64_t P = g.OH * g.OW, total = nb * g.C * g.R * g.S * P;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = i;
        const int64_t ow = t % g.OW;
        t /= g.OW;
        const int64_t oh = t % g.OH;
        t /= g.OH;
        const int64_t s = t % g.S;
        t /= g.S;
        const int64_t r = t % g.R;
        t /= g.R;
        const int64_t c = t % g.C;
        const int64_t n = t / g.C;
        const int64_t ih = oh * g.stride - g.pad + r, iw = ow * g.stride - g.pad + s;
        const bool inside = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
        const int64_t row = (c * g.R + r) * g.S + s;
        cols[n * stride_n + row * stride_row + oh * g.OW + ow] =
            inside ? x[((n * g.C + c) * g.H + ih) * g.W + iw] : 0.0f;
    }
}

void im2col(const float* x, const Conv2dShape& g, int64_t nb, float* cols, int64_t stride_n, int64_t stride_row) {
    int64_t total = nb * g.C * g.R * g.S * g.OH * g.OW;
    if (total == 0) return;
    im2col_kernel<<<grid_for(total), kThreads>>>(x, g, nb, cols, stride_n, stride_row);
    cuda::check_launch("im2col_kernel");
}

// ---- col2im: the columns' gradients back onto the input pixels --------------------------------
//
// dx (nb, C, H, W), overwritten, from dcols (nb, C*R*S, P). Thread i owns input pixel i
// (index order (n, c, ih, iw): a warp covers 32 neighbouring pixels of a row) and adds up
// every entry of dcols that im2col copied from it: tap (r, s) saw pixel (ih, iw) at
// output (oh, ow) when ih = oh*stride - pad + r and iw = ow*stride - pad + s, so each
// (r, s) gives at most one term, found by solving for oh and ow.
// Why a gather and not the CPU's scatter (each column entry added onto its pixel): on
// the GPU a scatter has many threads adding onto the same pixel at once (a 3x3 conv:
// up to 9), which needs atomicAdd, and float atomics add in whatever order the threads
// arrive, so the bits would change from run to run. Here one thread owns each pixel and
// adds its terms in a fixed order, (r, s) row by row, the CPU's order: no atomics, the
// same bits every run, and each pixel is written exactly once (no zeroing pass first).
__global__ void col2im_kernel(const float* dcols, Conv2dShape g, int64_t nb, float* dx) {
    const int64_t P = g.OH * g.OW, total = nb * g.C * g.H * g.W;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = i;
        const int64_t iw = t % g.W;
        t /= g.W;
        const int64_t ih = t % g.H;
        t /= g.H;
        const int64_t c = t % g.C;
        const int64_t n = t / g.C;
        const float* col = dcols + (n * g.C + c) * g.R * g.S * P;  // rows (c, 0, 0) ... (c, R-1, S-1) of sample n
        float sum = 0.0f;
        for (int64_t r = 0; r < g.R; ++r) {
            const int64_t th = ih + g.pad - r;  // = oh * stride for the output row that used tap r
            if (th < 0) break;                  // larger r only makes it more negative
            if (th % g.stride != 0) continue;   // no output row put tap r on this pixel
            const int64_t oh = th / g.stride;
            if (oh >= g.OH) continue;
            for (int64_t s = 0; s < g.S; ++s) {
                const int64_t tw = iw + g.pad - s;  // = ow * stride, likewise
                if (tw < 0) break;
                if (tw % g.stride != 0) continue;
                const int64_t ow = tw / g.stride;
                if (ow >= g.OW) continue;
                sum += col[(r * g.S + s) * P + oh * g.OW + ow];
            }
        }
        dx[i] = sum;
    }
}

void col2im(const float* dcols, const Conv2dShape& g, int64_t nb, float* dx) {
    int64_t total = nb * g.C * g.H * g.W;
    if (total == 0) return;
    col2im_kernel<<<grid_for(total), kThreads>>>(dcols, g, nb, dx);
    cuda::check_launch("col2im_kernel");
}

// ---- the small kernels around the GEMMs --------------------------------------------------------

// y (N, K, P): y[n, k, p] = bias[k], one thread per element. The bias goes in BEFORE the
// GEMM, which then adds its product onto it (beta = 1), rather than by a kernel after
// it: that is the CPU's order (each output row starts at its bias), and the memory
// traffic is the same either way (here: write y, then the GEMM reads and writes it once;
// after: the GEMM writes y, then a kernel reads and writes it).
__global__ void bias_fill_kernel(const float* bias, int64_t K, int64_t P, int64_t total, float* y) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = bias[(i / P) % K];
}

// dst (K, nb, P) = src (nb, K, P) with its first two dims swapped, one thread per element
// of dst (p fastest: both the read and the write of a warp are consecutive floats). It
// puts the chunk's dy in the layout whose rows are the A operand of dW's single GEMM.
__global__ void swap_batch_channel_kernel(const float* src, int64_t nb, int64_t K, int64_t P, float* dst) {
    const int64_t total = nb * K * P;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t p = i % P, n = (i / P) % nb, k = i / (P * nb);
        dst[i] = src[(n * K + k) * P + p];
    }
}

// dw[i] (+)= part[0][i] + part[1][i] + ... + part[pieces - 1][i]: split-K's second pass,
// one thread per element of dW, the partials added in piece order (the same bits every
// run). `accumulate`: a later chunk of the batch adds onto what the earlier ones left.
// Consecutive threads take consecutive i, so each of the `pieces` reads is coalesced.
__global__ void add_partials_kernel(const float* part, int64_t pieces, int64_t count, bool accumulate, float* dw) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count; i += (int64_t)gridDim.x * blockDim.x) {
        float s = part[i];
        for (int64_t p = 1; p < pieces; ++p) s += part[p * count + i];
        dw[i] = accumulate ? dw[i] + s : s;
    }
}

// dW (M, N) (+)= A (M, K) @ B^T, B stored (N, K), both with row stride ld (they are column
// ranges of the chunk's (rows, samples x positions) buffers). With a plan of one piece, one
// GEMM (beta adds onto dW). Otherwise piece p is the GEMM of columns [p piece, (p + 1)
// piece) of A and B: the full pieces as ONE batched GEMM whose batch stride is a piece's
// width (its matrices are side by side in the same rows), the shorter last piece as one
// more GEMM, each into its own slice of `part`; then add_partials_kernel.
void dw_gemm(const float* A, const float* B, int64_t ld, int64_t M, int64_t N, int64_t K, float* dw, bool accumulate,
             const cuda::SplitPlan& plan, float* part) {
    if (plan.pieces <= 1) {
        cuda::gemm(false, true, M, N, K, A, ld, 0, B, ld, 0, dw, N, 0, 1, accumulate ? 1.0f : 0.0f);
        return;
    }
    const int64_t full = K / plan.piece, rest = K - full * plan.piece;  // full pieces, the last one's length
    if (full > 0)
        cuda::gemm(false, true, M, N, plan.piece, A, ld, plan.piece, B, ld, plan.piece, part, N, M * N, full, 0.0f);
    if (rest > 0)
        cuda::gemm(false, true, M, N, rest, A + full * plan.piece, ld, 0, B + full * plan.piece, ld, 0,
                   part + full * M * N, N, 0, 1, 0.0f);
    const int64_t pieces = full + (rest > 0 ? 1 : 0);
    add_partials_kernel<<<grid_for(M * N), kThreads>>>(part, pieces, M * N, accumulate, dw);
    cuda::check_launch("add_partials_kernel");
}

// Sum of v over the block, left in thread 0 (warp shuffles, then the 8 warp totals
// through shared memory, in a fixed order). Every thread of the block must call it.
__device__ float block_sum(float v) {
    __shared__ float warp_total[kThreads / 32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (lane == 0) warp_total[warp] = v;
    __syncthreads();  // all warp totals are written before thread 0 reads them
    float total = 0.0f;
    if (threadIdx.x == 0)
        for (int w = 0; w < kThreads / 32; ++w) total += warp_total[w];
    return total;
}

// db[k] = sum of dy[n, k, p] over n and p: one block per channel k = blockIdx.x. Thread t
// takes j = t, t + 256, ... of the N*P terms (j = n P + p: consecutive threads read
// consecutive positions of one plane), then the block adds the partials up.
__global__ void bias_grad_kernel(const float* dy, int64_t N, int64_t K, int64_t P, float* db) {
    const int64_t k = blockIdx.x;
    float s = 0.0f;
    for (int64_t j = threadIdx.x; j < N * P; j += blockDim.x) s += dy[((j / P) * K + k) * P + j % P];
    s = block_sum(s);
    if (threadIdx.x == 0) db[k] = s;
}

// How many samples a chunk takes when each needs `floats_per_sample` of buffers.
int64_t chunk_samples(int64_t N, int64_t floats_per_sample) {
    if (floats_per_sample == 0) return N;
    return std::max<int64_t>(1, std::min<int64_t>(N, kColsBudget / floats_per_sample));
}

}  // namespace

// ---- conv2d forward ----------------------------------------------------------------------------

// y (N, K, OH, OW) = conv(x (N, C, H, W), w (K, C/G, R, S)) + bias (K)
void CudaBackend::conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                                 const Conv2dShape& g) {
    const int64_t N = g.N, G = g.groups, Cg = g.C / G, Kg = g.K / G;
    const int64_t CRS = Cg * g.R * g.S;    // rows of one group's cols = columns of its weight matrix
    const int64_t rows = g.C * g.R * g.S;  // rows of one sample's cols, all groups
    const int64_t P = g.OH * g.OW;         // output positions = columns of cols
    if (N == 0) return;                    // y is empty
    const bool direct = cols_is_input(g);
    const float* xp = x.data_f32();
    const float* wp = w.data_f32();
    float* yp = y.data_f32();
    if (bias.defined()) {
        bias_fill_kernel<<<grid_for(N * g.K * P), kThreads>>>(bias.data_f32(), g.K, P, N * g.K * P, yp);
        cuda::check_launch("bias_fill_kernel");
    }
    const float beta = bias.defined() ? 1.0f : 0.0f;  // accumulate onto the bias, or overwrite

    const int64_t nb = chunk_samples(N, direct ? 0 : rows * P);
    Tensor cols = direct ? Tensor() : Tensor::empty({nb, rows, P}, DType::Float32, Device::CUDA);  // (nb, C*R*S, P)
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        const int64_t nc = std::min(nb, N - n0);  // samples in this chunk
        const float* xn = xp + n0 * g.C * g.H * g.W;
        if (!direct) im2col(xn, g, nc, cols.data_f32(), rows * P, P);
        for (int64_t grp = 0; grp < G; ++grp) {
            // for each sample n of the chunk: y[n, grp] (Kg, P) (+)= W_grp (Kg, CRS) @ cols[n, grp] (CRS, P)
            const float* B = direct ? xn + grp * Cg * g.H * g.W : cols.data_f32() + grp * CRS * P;
            const int64_t stride_b = direct ? g.C * g.H * g.W : rows * P;
            cuda::gemm(false, false, Kg, P, CRS,                        //
                       wp + grp * Kg * CRS, CRS, 0,                     // the same W_grp for every sample
                       B, P, stride_b,                                  //
                       yp + (n0 * g.K + grp * Kg) * P, P, g.K * P, nc,  //
                       beta);
        }
    }
}

// ---- conv2d backward ---------------------------------------------------------------------------

// dx (N, C, H, W), dw (K, C/G, R, S), db (K) from dy (N, K, OH, OW), each overwritten.
// Any of the three may be undefined (not needed), and x may be undefined when dw is
// (conv_transpose2d's forward asks for dx alone).
void CudaBackend::conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                                  const Tensor& dw, const Tensor& db, const Conv2dShape& g) {
    const int64_t N = g.N, G = g.groups, Cg = g.C / G, Kg = g.K / G;
    const int64_t CRS = Cg * g.R * g.S, rows = g.C * g.R * g.S, P = g.OH * g.OW;
    const bool direct = cols_is_input(g);
    const float* wp = w.data_f32();
    const float* dyp = dy.data_f32();

    if (db.defined() && g.K > 0) {  // with N = 0 every block sums nothing: db = 0
        check(g.K <= 2147483647LL, "conv2d backward: ", g.K, " output channels is more than one grid holds");
        bias_grad_kernel<<<(unsigned)g.K, kThreads>>>(dyp, N, g.K, P, db.data_f32());
        cuda::check_launch("bias_grad_kernel");
    }
    if (!dx.defined() && !dw.defined()) return;
    if (N == 0) {  // an empty batch: dW is a sum of nothing, dx is empty
        if (dw.defined()) fill(dw, 0.0);
        return;
    }

    // Buffers per sample: cols for dW (its layout (C*R*S, nb, P)), then reused as dcols
    // for dx (layout (nb, C*R*S, P)) once dW's GEMMs are queued: the GPU runs them in
    // order on the one stream, so dW has read cols before dx's GEMM overwrites it. Plus
    // dy in (K, nb, P) for dW.
    const bool need_cols = dw.defined() || (dx.defined() && !direct);
    const int64_t per_sample = (need_cols ? rows * P : 0) + (dw.defined() ? g.K * P : 0);
    const int64_t nb = chunk_samples(N, per_sample);
    Tensor cols = need_cols ? Tensor::empty({nb * rows * P}, DType::Float32, Device::CUDA) : Tensor();
    Tensor dyt = dw.defined() ? Tensor::empty({g.K, nb, P}, DType::Float32, Device::CUDA) : Tensor();
    float* colp = need_cols ? cols.data_f32() : nullptr;
    // dW's split-K partials, sized for the most pieces a chunk plans (chunks have nb
    // samples, the last one maybe fewer). One buffer serves every group and chunk: the GPU
    // runs their kernels in order on the one stream.
    const int64_t most_pieces = std::max(cuda::plan_split_k(Kg, CRS, nb * P).pieces,
                                         cuda::plan_split_k(Kg, CRS, (N % nb == 0 ? nb : N % nb) * P).pieces);
    Tensor part = dw.defined() && most_pieces > 1 ? Tensor::empty({most_pieces, Kg, CRS}, DType::Float32, Device::CUDA)
                                                  : Tensor();

    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        const int64_t nc = std::min(nb, N - n0);  // samples in this chunk
        const float* dyn = dyp + n0 * g.K * P;    // dy[n0]: (nc, K, P)
        if (dw.defined()) {
            // dW_grp (Kg, CRS) (+)= dY_grp (Kg, nc*P) @ cols_grp^T (nc*P, CRS): the sum over
            // the chunk's samples and positions is the GEMM's inner dimension.
            im2col(x.data_f32() + n0 * g.C * g.H * g.W, g, nc, colp, P, nc * P);  // (C*R*S, nc, P)
            swap_batch_channel_kernel<<<grid_for(nc * g.K * P), kThreads>>>(dyn, nc, g.K, P, dyt.data_f32());
            cuda::check_launch("swap_batch_channel_kernel");
            const cuda::SplitPlan plan = cuda::plan_split_k(Kg, CRS, nc * P);
            for (int64_t grp = 0; grp < G; ++grp)
                dw_gemm(dyt.data_f32() + grp * Kg * nc * P,  // (Kg, nc*P)
                        colp + grp * CRS * nc * P,           // stored (CRS, nc*P): transposed
                        nc * P, Kg, CRS, nc * P, dw.data_f32() + grp * Kg * CRS,
                        n0 > 0,  // the first chunk overwrites
                        plan, part.defined() ? part.data_f32() : nullptr);
        }
        if (dx.defined()) {
            // for each sample n: dcols[n, grp] (CRS, P) = W_grp^T (CRS, Kg) @ dY[n, grp] (Kg, P);
            // for a 1x1 stride-1 conv, dcols is dx itself.
            float* dxn = dx.data_f32() + n0 * g.C * g.H * g.W;
            for (int64_t grp = 0; grp < G; ++grp) {
                float* C = direct ? dxn + grp * Cg * g.H * g.W : colp + grp * CRS * P;
                const int64_t stride_c = direct ? g.C * g.H * g.W : rows * P;
                cuda::gemm(true, false, CRS, P, Kg,         //
                           wp + grp * Kg * CRS, CRS, 0,     // stored (Kg, CRS): transposed
                           dyn + grp * Kg * P, P, g.K * P,  //
                           C, P, stride_c, nc, 0.0f);
            }
            if (!direct) col2im(colp, g, nc, dxn);
        }
    }
}

// ---- avg_pool2d: y (N, C, H/k, W/k) = mean of each k x k window (stride k) ---------------------
//
namespace {

// One thread per output element (the window loops in the CPU's order, so the sums have
// the CPU's bits); a warp covers 32 neighbouring outputs of a row.
__global__ void avg_pool2d_kernel(const float* x, int64_t H, int64_t W, int64_t k, int64_t total, float* y) {
    const int64_t OH = H / k, OW = W / k;
    const float scale = 1.0f / (float)(k * k);
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < total; o += (int64_t)gridDim.x * blockDim.x) {
        const int64_t ow = o % OW, oh = (o / OW) % OH, pl = o / (OW * OH);  // pl: the (n, c) plane
        const float* xi = x + pl * H * W;
        float s = 0.0f;
        for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j < k; ++j) s += xi[(oh * k + i) * W + ow * k + j];
        y[o] = s * scale;
    }
}

// dx[ih, iw] = dy[ih / k, iw / k] / k^2, one thread per input pixel. (The op makes H and
// W multiples of k; a pixel in no window would get 0, as in PyTorch.)
__global__ void avg_pool2d_backward_kernel(const float* dy, int64_t H, int64_t W, int64_t k, int64_t total, float* dx) {
    const int64_t OH = H / k, OW = W / k;
    const float scale = 1.0f / (float)(k * k);
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t iw = i % W, ih = (i / W) % H, pl = i / (W * H);
        const int64_t oh = ih / k, ow = iw / k;
        dx[i] = oh < OH && ow < OW ? dy[(pl * OH + oh) * OW + ow] * scale : 0.0f;
    }
}

}  // namespace

void CudaBackend::avg_pool2d(const Tensor& x, int64_t k, const Tensor& y) {
    const int64_t total = y.numel();
    if (total == 0) return;
    avg_pool2d_kernel<<<grid_for(total), kThreads>>>(x.data_f32(), x.size(2), x.size(3), k, total, y.data_f32());
    cuda::check_launch("avg_pool2d_kernel");
}

void CudaBackend::avg_pool2d_backward(const Tensor& dy, int64_t k, const Tensor& dx) {
    const int64_t total = dx.numel();
    if (total == 0) return;
    avg_pool2d_backward_kernel<<<grid_for(total), kThreads>>>(dy.data_f32(), dx.size(2), dx.size(3), k, total,
                                                              dx.data_f32());
    cuda::check_launch("avg_pool2d_backward_kernel");
}

// ---- upsample_nearest2d: y (N, C, H*s, W*s), y[oh, ow] = x[oh / s, ow / s] ------------------------

namespace {

// One thread per output element: a warp writes 32 neighbouring outputs of a row.
__global__ void upsample_nearest2d_kernel(const float* x, int64_t H, int64_t W, int64_t s, int64_t total, float* y) {
    const int64_t OH = H * s, OW = W * s;
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < total; o += (int64_t)gridDim.x * blockDim.x) {
        const int64_t ow = o % OW, oh = (o / OW) % OH, pl = o / (OW * OH);
        y[o] = x[(pl * H + oh / s) * W + ow / s];
    }
}

// dx[ih, iw] = sum of dy over the s x s block that pixel was copied to: one thread per
// input pixel, adding the block in the CPU's order (no atomics: each pixel has one owner).
__global__ void upsample_nearest2d_backward_kernel(const float* dy, int64_t H, int64_t W, int64_t s, int64_t total,
                                                   float* dx) {
    const int64_t OH = H * s, OW = W * s;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t iw = i % W, ih = (i / W) % H, pl = i / (W * H);
        float sum = 0.0f;
        for (int64_t a = 0; a < s; ++a)
            for (int64_t b = 0; b < s; ++b) sum += dy[(pl * OH + ih * s + a) * OW + iw * s + b];
        dx[i] = sum;
    }
}

}  // namespace

void CudaBackend::upsample_nearest2d(const Tensor& x, int64_t s, const Tensor& y) {
    const int64_t total = y.numel();
    if (total == 0) return;
    upsample_nearest2d_kernel<<<grid_for(total), kThreads>>>(x.data_f32(), x.size(2), x.size(3), s, total,
                                                             y.data_f32());
    cuda::check_launch("upsample_nearest2d_kernel");
}

void CudaBackend::upsample_nearest2d_backward(const Tensor& dy, int64_t s, const Tensor& dx) {
    const int64_t total = dx.numel();
    if (total == 0) return;
    upsample_nearest2d_backward_kernel<<<grid_for(total), kThreads>>>(dy.data_f32(), dx.size(2), dx.size(3), s, total,
                                                                      dx.data_f32());
    cuda::check_launch("upsample_nearest2d_backward_kernel");
}

}  // namespace td
