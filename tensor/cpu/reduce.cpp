// tensor/cpu/reduce.cpp: sum and max over the innermost block of a contiguous tensor.
//
// The op (tensor/ops/reduce.cpp) permutes the reduced dims to the end and makes the
// tensor contiguous, so every reduction here is out[o] = reduce(x[o, 0:inner]).
// Sums accumulate in double over fixed 4096-element chunks that are then added in
// order: the result is the same for any number of threads.
#include <cmath>
#include <vector>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/lane_sum.h"
#include "tensor/error.h"

namespace td {

static constexpr int64_t kChunk = 4096;

static double sum_block(const float* x, int64_t n) { return lane_sum(x, n); }

// One long row (e.g. the sum of a whole tensor): chunks in parallel, partials in order.
static double sum_long_row(const float* x, int64_t n) {
    int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> partial(chunks);
#pragma omp parallel for
    for (int64_t c = 0; c < chunks; ++c) {
        int64_t begin = c * kChunk, end = std::min(n, begin + kChunk);
        partial[c] = sum_block(x + begin, end - begin);
    }
    double s = 0.0;
    for (double p : partial) s += p;
    return s;
}

void CpuBackend::reduce_inner(ReduceOp op, const Tensor& x, int64_t inner, const Tensor& out, const Tensor& argmax) {
    check(x.is_contiguous(), "reduce: kernel needs a contiguous input");
    const float* xp = x.data_f32();
    float* op_ = out.data_f32();
    int64_t outer = inner == 0 ? out.numel() : x.numel() / inner;

    if (op == ReduceOp::Sum) {
        if (outer == 1) {
            op_[0] = (float)sum_long_row(xp, inner);
            return;
        }
#pragma omp parallel for if (outer * inner > 32768)
        for (int64_t o = 0; o < outer; ++o) op_[o] = (float)sum_block(xp + o * inner, inner);
        return;
    }

    // Max: the first index of the largest value; NaN counts as largest (it propagates).
    check(inner > 0, "max: cannot reduce over an empty dim");
    int64_t* idx = argmax.defined() ? argmax.data_i64() : nullptr;
#pragma omp parallel for if (outer * inner > 32768)
    for (int64_t o = 0; o < outer; ++o) {
        const float* row = xp + o * inner;
        int64_t best = 0;
        for (int64_t i = 1; i < inner; ++i) {
            if (std::isnan(row[best])) break;
            if (row[i] > row[best] || std::isnan(row[i])) best = i;
        }
        op_[o] = row[best];
        if (idx) idx[o] = best;
    }
}

}  // namespace td
