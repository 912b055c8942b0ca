// cuda/strided.cuh: where element i of a strided tensor lives, as a kernel computes it.
//
// A kernel gets each operand's layout by value (a small struct in the kernel's
// parameter space, no allocation) and turns the flat index i of the output, in
// row-major order, into that operand's storage offset: peel off the last dim first
// (i % size, then i / size), multiply each coordinate by the operand's stride. A
// broadcast operand has stride 0 in the broadcast dims, so the same code serves it.
#pragma once
#include <cstdint>

#include "tensor/error.h"
#include "tensor/tensor.h"

namespace td::cuda {

constexpr int kMaxDims = 8;  // more than any op of the engine uses (attention: 4, conv: 4)

struct Strided {
    int rank;
    int64_t size[kMaxDims];
    int64_t stride[kMaxDims];

    // Offset (in elements) of flat row-major index i from element (0, ..., 0), which is
    // where Tensor::data_f32() points. Index = uint32_t does the div and mod in 32 bits
    // (a few instructions, not a 64-bit software division): only for a caller that has
    // checked that i and every offset fit (max_offset() < 2^31; strides >= 0).
    template <typename Index = int64_t>
    __host__ __device__ Index at(Index i) const {
        Index off = 0;
        for (int d = rank - 1; d >= 0; --d) {
            Index s = (Index)size[d];
            off += (i % s) * (Index)stride[d];
            i /= s;
        }
        return off;
    }

    // The largest offset of any element (strides are >= 0: views here never reverse a dim).
    int64_t max_offset() const {
        int64_t m = 0;
        for (int d = 0; d < rank; ++d) m += (size[d] - 1) * stride[d];
        return m;
    }
};

// The layout of t, to pass to a kernel. 0-d tensors become shape [1].
inline Strided strided(const Tensor& t) {
    check(t.dim() <= kMaxDims, "cuda: tensors of more than ", kMaxDims, " dims are not supported, got ", t.shape());
    Strided s{};
    s.rank = t.dim() == 0 ? 1 : (int)t.dim();
    for (int d = 0; d < s.rank; ++d) {
        s.size[d] = t.dim() == 0 ? 1 : t.shape()[d];
        s.stride[d] = t.dim() == 0 ? 1 : t.strides()[d];
    }
    return s;
}

}  // namespace td::cuda
