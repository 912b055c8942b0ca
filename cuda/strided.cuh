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
    // where Tensor::data_f32() points.
    __host__ __device__ int64_t at(int64_t i) const {
        int64_t off = 0;
        for (int d = rank - 1; d >= 0; --d) {
            int64_t s = size[d];
            off += (i % s) * stride[d];
            i /= s;
        }
        return off;
    }
};

// The layout of t, to pass to a kernel. 0-d tensors become shape [1].
inline Strided strided(const Tensor& t) {
    check(t.dim() <= kMaxDims, "cuda: tensors of more than ", kMaxDims, " dims are not supported, got ",
          shape_str(t.shape()));
    Strided s{};
    s.rank = t.dim() == 0 ? 1 : (int)t.dim();
    for (int d = 0; d < s.rank; ++d) {
        s.size[d] = t.dim() == 0 ? 1 : t.shape()[d];
        s.stride[d] = t.dim() == 0 ? 1 : t.strides()[d];
    }
    return s;
}

}  // namespace td::cuda
