// cuda/reduce.cu: sum and max over the innermost block of a contiguous tensor, the
// twin of tensor/cpu/reduce.cpp: out[o] = reduce(x[o, 0:inner]).
//
// One block of 256 threads per output row o (blockIdx.x = o). Thread t reads elements
// t, t + 256, t + 512, ... of the row (consecutive threads, consecutive addresses: each
// warp's loads coalesce) and keeps a running partial. Then the block combines its 256
// partials in two steps: within each warp by shuffles (__shfl_down_sync: lane l adds lane
// l + 16, then l + 8, ..., no shared memory needed), then warp 0 combines the 8 warp
// results left in shared memory. The order of additions is fixed, so the result is the
// same on every run (though not the CPU's bits: the CPU sums in double, in chunks).
#include <cstdint>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"

namespace td {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

__device__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;  // lane 0 holds the warp's total
}

__global__ void sum_rows_kernel(const float* x, int64_t inner, float* out) {
    const float* row = x + blockIdx.x * inner;
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < inner; i += kThreads) s += row[i];
    __shared__ float warp_total[kWarps];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    s = warp_sum(s);
    if (lane == 0) warp_total[warp] = s;
    __syncthreads();  // every warp's total is in shared memory before warp 0 reads them
    if (warp == 0) {
        s = lane < kWarps ? warp_total[lane] : 0.0f;
        s = warp_sum(s);
        if (lane == 0) out[blockIdx.x] = s;
    }
}

// (value, index) pairs: the larger value wins, NaN beats everything (it propagates, as on
// the CPU), and on a tie the smaller index (the first occurrence).
__device__ bool better(float v, int64_t i, float best_v, int64_t best_i) {
    bool vn = v != v, bn = best_v != best_v;
    if (vn || bn) return vn && (!bn || i < best_i);
    return v > best_v || (v == best_v && i < best_i);
}

__global__ void max_rows_kernel(const float* x, int64_t inner, float* out, int64_t* argmax) {
    const float* row = x + blockIdx.x * inner;
    float best_v = row[0];
    int64_t best_i = 0;
    for (int64_t i = threadIdx.x; i < inner; i += kThreads)
        if (better(row[i], i, best_v, best_i)) { best_v = row[i]; best_i = i; }
    for (int offset = 16; offset > 0; offset /= 2) {
        float v = __shfl_down_sync(0xffffffffu, best_v, offset);
        int64_t i = __shfl_down_sync(0xffffffffu, best_i, offset);
        if (better(v, i, best_v, best_i)) { best_v = v; best_i = i; }
    }
    __shared__ float warp_v[kWarps];
    __shared__ int64_t warp_i[kWarps];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) { warp_v[warp] = best_v; warp_i[warp] = best_i; }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < kWarps; ++w)
            if (better(warp_v[w], warp_i[w], best_v, best_i)) { best_v = warp_v[w]; best_i = warp_i[w]; }
        out[blockIdx.x] = best_v;
        if (argmax) argmax[blockIdx.x] = best_i;
    }
}

}  // namespace

void CudaBackend::reduce_inner(ReduceOp op, const Tensor& x, int64_t inner, const Tensor& out,
                               const Tensor& argmax) {
    check(x.is_contiguous(), "reduce: kernel needs a contiguous input");
    int64_t outer = inner == 0 ? out.numel() : x.numel() / inner;
    if (outer == 0) return;
    check(outer <= 2147483647LL, "cuda reduce: ", outer, " rows is more than one grid holds");
    if (op == ReduceOp::Sum) {
        if (inner == 0) { fill(out, 0.0); return; }
        sum_rows_kernel<<<(unsigned)outer, kThreads>>>(x.data_f32(), inner, out.data_f32());
        cuda::check_launch("sum_rows_kernel");
        return;
    }
    check(inner > 0, "max: cannot reduce over an empty dim");
    max_rows_kernel<<<(unsigned)outer, kThreads>>>(x.data_f32(), inner, out.data_f32(),
                                                    argmax.defined() ? argmax.data_i64() : nullptr);
    cuda::check_launch("max_rows_kernel");
}

}  // namespace td
