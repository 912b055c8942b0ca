// cuda/reduce.cu: sum and max over the innermost block of a contiguous tensor, the
// twin of tensor/cpu/reduce.cpp: out[o] = reduce(x[o, 0:inner]).
//
// One block of 256 threads per piece of an output row. Thread t reads elements t, t + 256,
// t + 512, ... of its piece (consecutive threads, consecutive addresses: each warp's loads
// coalesce) and keeps a running partial. Then the block combines its 256 partials in two
// steps: within each warp by shuffles (__shfl_down_sync: lane l adds lane l + 16, then
// l + 8, ..., no shared memory needed), then warp 0 combines the 8 warp results left in
// shared memory.
//
// A piece is the whole row, unless there are few rows and they are long: a loss's sum over
// a batch (1 row of 250,000), a mean over 5,000 features of 3 samples. One block per row
// would then run on 3 of the GPU's 132 SMs. cuda/split_plan.h cuts each row into pieces of
// at least 2,048 elements, enough that about 256 blocks run; each block writes its piece's
// partial (for max: the value and its index in the row) to a buffer, and the same kernel
// runs again over the (rows, pieces) partials. Both passes add in a fixed order, so the
// result is the same on every run (though not the CPU's bits: the CPU sums in double, in
// chunks).
#include <cstdint>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/split_plan.h"

namespace td {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

__device__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;  // lane 0 holds the warp's total
}

// Block b sums piece b % pieces of row b / pieces: elements [start, start + piece) of it,
// clipped to the row; out[b] = the sum. With pieces = 1, piece = inner: one block a row.
__global__ void sum_rows_kernel(const float* x, int64_t inner, int64_t pieces, int64_t piece, float* out) {
    const int64_t b = blockIdx.x, start = (b % pieces) * piece;
    const float* row = x + (b / pieces) * inner;
    const int64_t end = start + piece < inner ? start + piece : inner;
    float s = 0.0f;
    for (int64_t i = start + threadIdx.x; i < end; i += kThreads) s += row[i];
    __shared__ float warp_total[kWarps];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    s = warp_sum(s);
    if (lane == 0) warp_total[warp] = s;
    __syncthreads();  // every warp's total is in shared memory before warp 0 reads them
    if (warp == 0) {
        s = lane < kWarps ? warp_total[lane] : 0.0f;
        s = warp_sum(s);
        if (lane == 0) out[b] = s;
    }
}

// (value, index) pairs: the larger value wins, NaN beats everything (it propagates, as on
// the CPU), and on a tie the smaller index (the first occurrence).
__device__ bool better(float v, int64_t i, float best_v, int64_t best_i) {
    bool vn = v != v, bn = best_v != best_v;
    if (vn || bn) return vn && (!bn || i < best_i);
    return v > best_v || (v == best_v && i < best_i);
}

// Block b finds the largest element of piece b % pieces of row b / pieces, as
// sum_rows_kernel splits it; out[b] = its value, argmax[b] = its index in the row. An
// element's index is its position i in the row, or index[row * inner + i] when `index` is
// given: the second pass, whose rows are the first pass's partials and their indices.
__global__ void max_rows_kernel(const float* x, const int64_t* index, int64_t inner, int64_t pieces, int64_t piece,
                                float* out, int64_t* argmax) {
    const int64_t b = blockIdx.x, start = (b % pieces) * piece;
    const float* row = x + (b / pieces) * inner;
    const int64_t* row_index = index ? index + (b / pieces) * inner : nullptr;
    const int64_t end = start + piece < inner ? start + piece : inner;
    float best_v = row[start];
    int64_t best_i = row_index ? row_index[start] : start;
    for (int64_t i = start + threadIdx.x; i < end; i += kThreads) {
        const int64_t at = row_index ? row_index[i] : i;
        if (better(row[i], at, best_v, best_i)) {
            best_v = row[i];
            best_i = at;
        }
    }
    for (int offset = 16; offset > 0; offset /= 2) {
        float v = __shfl_down_sync(0xffffffffu, best_v, offset);
        int64_t i = __shfl_down_sync(0xffffffffu, best_i, offset);
        if (better(v, i, best_v, best_i)) {
            best_v = v;
            best_i = i;
        }
    }
    __shared__ float warp_v[kWarps];
    __shared__ int64_t warp_i[kWarps];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
        warp_v[warp] = best_v;
        warp_i[warp] = best_i;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < kWarps; ++w)
            if (better(warp_v[w], warp_i[w], best_v, best_i)) {
                best_v = warp_v[w];
                best_i = warp_i[w];
            }
        out[b] = best_v;
        if (argmax) argmax[b] = best_i;
    }
}

}  // namespace

void CudaBackend::reduce_inner(ReduceOp op, const Tensor& x, int64_t inner, const Tensor& out, const Tensor& argmax) {
    check(x.is_contiguous(), "reduce: kernel needs a contiguous input");
    int64_t outer = inner == 0 ? out.numel() : x.numel() / inner;
    if (outer == 0) return;
    if (op == ReduceOp::Sum && inner == 0) {
        fill(out, 0.0);
        return;
    }
    check(inner > 0, "max: cannot reduce over an empty dim");
    const cuda::SplitPlan plan = cuda::plan_split_rows(outer, inner);
    check(outer * plan.pieces <= 2147483647LL, "cuda reduce: ", outer, " rows is more than one grid holds");
    const unsigned blocks = (unsigned)(outer * plan.pieces);
    int64_t* idx = argmax.defined() ? argmax.data_i64() : nullptr;
    if (plan.pieces == 1) {  // one block per row, straight into out
        if (op == ReduceOp::Sum) {
            sum_rows_kernel<<<blocks, kThreads>>>(x.data_f32(), inner, 1, inner, out.data_f32());
            cuda::check_launch("sum_rows_kernel");
        } else {
            max_rows_kernel<<<blocks, kThreads>>>(x.data_f32(), nullptr, inner, 1, inner, out.data_f32(), idx);
            cuda::check_launch("max_rows_kernel");
        }
        return;
    }
    // Pass 1: each piece's partial, (outer, pieces). Pass 2: each row of partials, one block.
    Tensor part = Tensor::empty({outer, plan.pieces}, DType::Float32, Device::CUDA);
    if (op == ReduceOp::Sum) {
        sum_rows_kernel<<<blocks, kThreads>>>(x.data_f32(), inner, plan.pieces, plan.piece, part.data_f32());
        cuda::check_launch("sum_rows_kernel (pieces)");
        sum_rows_kernel<<<(unsigned)outer, kThreads>>>(part.data_f32(), plan.pieces, 1, plan.pieces, out.data_f32());
        cuda::check_launch("sum_rows_kernel (partials)");
        return;
    }
    Tensor part_i = Tensor::empty({outer, plan.pieces}, DType::Int64, Device::CUDA);
    max_rows_kernel<<<blocks, kThreads>>>(x.data_f32(), nullptr, inner, plan.pieces, plan.piece, part.data_f32(),
                                          part_i.data_i64());
    cuda::check_launch("max_rows_kernel (pieces)");
    max_rows_kernel<<<(unsigned)outer, kThreads>>>(part.data_f32(), part_i.data_i64(), plan.pieces, 1, plan.pieces,
                                                   out.data_f32(), idx);
    cuda::check_launch("max_rows_kernel (partials)");
}

}  // namespace td
