// cuda/softmax.cu: softmax and log_softmax over the last dim, x viewed as (M, D). Twin of
// tensor/cpu/softmax.cpp, same formulas:
//   softmax:      y = exp(x - max) / sum(exp(x - max))
//   log_softmax:  y = x - max - log(sum(exp(x - max)))
// Backward from the saved output y:
//   softmax:      dx = y * (dy - sum(dy * y))
//   log_softmax:  dx = dy - exp(y) * sum(dy)
//
// Who computes what. A row is handled by a "team" of threads: one warp when the row is
// short (D <= 1024: each of the 32 lanes then has at most 32 elements, and a block of 8
// warps does 8 rows at once, so short rows do not leave 7/8 of a block idle), or one
// block of 512 threads when it is long (a warp alone would take too many steps through
// the row). Lane l of a team reads elements l, l + team, l + 2 team, ... : neighbouring
// lanes read neighbouring floats, so every warp's loads coalesce. The team then combines
// its partial results: inside a warp by shuffles, across warps through shared memory.
// Every thread of the team combines the partials in the same order, so every thread gets
// the same bits, and a row gets the same bits on every run.
//
// The forward reads x twice, not three times (max, sum, output), because the max and
// the sum come from one pass, the online softmax (Milakov & Gimelshein 2018): each lane
// keeps a running max m and a running sum s = sum e^(x_i - m) of what it has seen. When
// an element x arrives the max may grow, and the sum so far was taken relative to the
// old max, so it is rescaled:
//     m' = max(m, x),   s' = s e^(m - m') + e^(x - m')
// (e^(x_i - m) e^(m - m') = e^(x_i - m'): every old term is now relative to m'). Two
// partial (m, s) of the same row merge by the same rule, which is how lanes, then warps,
// combine theirs. The result is the CPU's max and sum, up to float rounding.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"

namespace td {

namespace {

constexpr int kWarpThreads = 256;  // warp-per-row blocks: 8 rows per block
constexpr int kRowsPerWarpBlock = kWarpThreads / 32;
constexpr int kBlockThreads = 512;     // block-per-row blocks: 16 warps
constexpr int64_t kMaxWarpRow = 1024;  // rows up to this long go to a warp

// e^(a - b) for the online rescaling, where b >= a. A part that has seen nothing (or only
// -inf) has a = -inf and contributes nothing; e^(a - b) would give e^(-inf + inf) = NaN
// when b is -inf too, so that case is 0 by hand. NaN and +inf still give NaN, as on the
// CPU, where they make the whole row NaN.
__device__ float rescale(float a, float b) { return a == -INFINITY ? 0.0f : expf(a - b); }

// Merges the partial (m2, s2) into (m, s):  m' = max(m, m2),  s' = s e^(m - m') + s2 e^(m2 - m').
// fmaxf ignores a NaN argument, as the CPU's `x > max ? x : max` does; the NaN then
// reaches s through e^(NaN - m'). The formula is symmetric in its two parts (float + and
// * commute), so both lanes of a shuffle pair compute the same bits.
__device__ void online_merge(float& m, float& s, float m2, float s2) {
    float mn = fmaxf(m, m2);
    s = s * rescale(m, mn) + s2 * rescale(m2, mn);
    m = mn;
}

// Sum over the team, returned to every thread of it. team is 32 (a warp) or blockDim.x
// (the block): the same for every thread of a block, so the __syncthreads below are
// reached by all of the block's threads or by none. `scratch` holds one float per warp.
__device__ float team_sum(float v, int team, float* scratch) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);  // butterfly:
    if (team == 32) return v;                                                                     // every lane has it
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    if (lane == 0) scratch[warp] = v;
    __syncthreads();  // every warp's total is written
    float total = 0.0f;
    for (int w = 0; w < warps; ++w) total += scratch[w];  // same order in every thread
    __syncthreads();                                      // every thread has read scratch before anyone writes it again
    return total;
}

// The online (max, sum) of the team's row, returned to every thread of the team.
__device__ void team_max_sum(float& m, float& s, int team, float* scratch_m, float* scratch_s) {
    for (int offset = 16; offset > 0; offset /= 2) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, offset);
        float s2 = __shfl_xor_sync(0xffffffffu, s, offset);
        online_merge(m, s, m2, s2);
    }
    if (team == 32) return;
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    if (lane == 0) {
        scratch_m[warp] = m;
        scratch_s[warp] = s;
    }
    __syncthreads();
    m = -INFINITY;
    s = 0.0f;
    for (int w = 0; w < warps; ++w) online_merge(m, s, scratch_m[w], scratch_s[w]);
    __syncthreads();
}

// The team of this thread: its row and its lane within the team. rows_per_block is 8
// (teams are warps) or 1 (the team is the block).
struct Team {
    int64_t row;
    int lane, size;
};
__device__ Team my_team(int rows_per_block) {
    int size = blockDim.x / rows_per_block;
    return {blockIdx.x * (int64_t)rows_per_block + threadIdx.x / size, (int)(threadIdx.x % size), size};
}

// y (M, D) = softmax or log_softmax of x (M, D), one row per team.
__global__ void softmax_forward_kernel(const float* x, float* y, int64_t M, int64_t D, int rows_per_block, bool log) {
    __shared__ float scratch_m[32], scratch_s[32];
    Team t = my_team(rows_per_block);
    // Only whole warps of the last block can be past the end (in warp mode); in block
    // mode row = blockIdx.x < M always, so this never skips a __syncthreads.
    if (t.row >= M) return;
    const float* xr = x + t.row * D;
    float* yr = y + t.row * D;
    float m = -INFINITY, s = 0.0f;                                                 // an empty part: nothing seen yet
    for (int64_t d = t.lane; d < D; d += t.size) online_merge(m, s, xr[d], 1.0f);  // one element: (x, e^0 = 1)
    team_max_sum(m, s, t.size, scratch_m, scratch_s);
    if (log) {
        float log_sum = logf(s);
        for (int64_t d = t.lane; d < D; d += t.size) yr[d] = xr[d] - m - log_sum;
    } else {
        float inv = 1.0f / s;
        for (int64_t d = t.lane; d < D; d += t.size) yr[d] = expf(xr[d] - m) * inv;
    }
}

// dx (M, D) from the saved output y and dy, one row per team.
__global__ void softmax_backward_kernel(const float* y, const float* dy, float* dx, int64_t M, int64_t D,
                                        int rows_per_block, bool log) {
    __shared__ float scratch[32];
    Team t = my_team(rows_per_block);
    if (t.row >= M) return;  // whole warps only, as in the forward
    const float* yr = y + t.row * D;
    const float* dyr = dy + t.row * D;
    float* dxr = dx + t.row * D;
    float part = 0.0f;  // log: sum(dy); softmax: sum(dy * y)
    for (int64_t d = t.lane; d < D; d += t.size) part += log ? dyr[d] : dyr[d] * yr[d];
    float s = team_sum(part, t.size, scratch);
    for (int64_t d = t.lane; d < D; d += t.size) dxr[d] = log ? dyr[d] - expf(yr[d]) * s : yr[d] * (dyr[d] - s);
}

// The launch shape for M rows of D: (blocks, threads, rows per block).
struct RowLaunch {
    unsigned blocks;
    int threads, rows_per_block;
};
RowLaunch row_launch(int64_t M, int64_t D, const char* op) {
    RowLaunch l = D <= kMaxWarpRow ? RowLaunch{0, kWarpThreads, kRowsPerWarpBlock} : RowLaunch{0, kBlockThreads, 1};
    int64_t blocks = (M + l.rows_per_block - 1) / l.rows_per_block;
    check(blocks <= 2147483647LL, op, ": ", M, " rows is more than one grid holds");
    l.blocks = (unsigned)blocks;
    return l;
}

}  // namespace

void CudaBackend::softmax_forward(const Tensor& x, const Tensor& y, bool log) {
    check(x.is_contiguous() && y.is_contiguous(), "softmax: kernel needs contiguous tensors");
    int64_t D = x.size(-1), M = x.numel() / std::max<int64_t>(D, 1);
    if (M == 0 || D == 0) return;
    RowLaunch l = row_launch(M, D, log ? "log_softmax" : "softmax");
    softmax_forward_kernel<<<l.blocks, l.threads>>>(x.data_f32(), y.data_f32(), M, D, l.rows_per_block, log);
    cuda::check_launch("softmax_forward_kernel");
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, bool log) {
    check(y.is_contiguous() && dy.is_contiguous() && dx.is_contiguous(),
          "softmax backward: kernel needs contiguous tensors");
    int64_t D = y.size(-1), M = y.numel() / std::max<int64_t>(D, 1);
    if (M == 0 || D == 0) return;
    RowLaunch l = row_launch(M, D, log ? "log_softmax backward" : "softmax backward");
    softmax_backward_kernel<<<l.blocks, l.threads>>>(y.data_f32(), dy.data_f32(), dx.data_f32(), M, D, l.rows_per_block,
                                                     log);
    cuda::check_launch("softmax_backward_kernel");
}

}  // namespace td
