// tensor/cpu/index.cpp: index_select / index_add and gather / scatter_add.
// Each pair is a forward and its backward: reading x at chosen positions, then adding
// the incoming gradient back at the same positions (repeated indices add up).
#include "tensor/cpu/cpu_backend.h"
#include "tensor/error.h"

namespace td {

// x viewed as (outer, size_along_dim, inner), contiguous.
struct ThreeD {
    int64_t outer, mid, inner;
};
static ThreeD around(const Shape& s, int64_t dim) {
    ThreeD t{1, s.empty() ? 1 : s[dim], 1};
    for (int64_t d = 0; d < dim; ++d) t.outer *= s[d];
    for (size_t d = dim + 1; d < s.size(); ++d) t.inner *= s[d];
    return t;
}

// out[o, i, :] = x[o, index[i], :]
void CpuBackend::index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
    ThreeD xs = around(x.shape(), dim);
    int64_t n = index.numel();
    const float* xp = x.data_f32();
    const int64_t* ip = index.data_i64();
    float* op = out.data_f32();
#pragma omp parallel for if (xs.outer * n * xs.inner > 32768)
    for (int64_t o = 0; o < xs.outer; ++o)
        for (int64_t i = 0; i < n; ++i) {
            const float* src = xp + (o * xs.mid + ip[i]) * xs.inner;
            float* dst = op + (o * n + i) * xs.inner;
            for (int64_t k = 0; k < xs.inner; ++k) dst[k] = src[k];
        }
}

// out[o, index[i], :] += src[o, i, :]   (sequential in i: repeated indices accumulate)
void CpuBackend::index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
    ThreeD os = around(out.shape(), dim);
    int64_t n = index.numel();
    const float* sp = src.data_f32();
    const int64_t* ip = index.data_i64();
    float* op = out.data_f32();
#pragma omp parallel for if (os.outer * n * os.inner > 32768)
    for (int64_t o = 0; o < os.outer; ++o)
        for (int64_t i = 0; i < n; ++i) {
            const float* s = sp + (o * n + i) * os.inner;
            float* d = op + (o * os.mid + ip[i]) * os.inner;
            for (int64_t k = 0; k < os.inner; ++k) d[k] += s[k];
        }
}

// Offset in a contiguous tensor of shape `s` of the multi-index of element `flat` of
// the index tensor (shape `is`), with the coordinate along `dim` replaced by `along`.
static int64_t gathered_offset(const Shape& s, const Shape& is, int64_t dim, int64_t flat, int64_t along) {
    int64_t off = 0, stride = 1;
    for (int64_t d = (int64_t)is.size() - 1; d >= 0; --d) {
        int64_t coord = flat % is[d];
        flat /= is[d];
        off += (d == dim ? along : coord) * stride;
        stride *= s[d];
    }
    return off;
}

// out[i] = x[i with coordinate dim replaced by index[i]]
void CpuBackend::gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
    const float* xp = x.data_f32();
    const int64_t* ip = index.data_i64();
    float* op = out.data_f32();
    int64_t n = index.numel();
#pragma omp parallel for if (n > 32768)
    for (int64_t i = 0; i < n; ++i) op[i] = xp[gathered_offset(x.shape(), index.shape(), dim, i, ip[i])];
}

// out[i with coordinate dim replaced by index[i]] += src[i]  (sequential: targets may repeat)
void CpuBackend::scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
    const float* sp = src.data_f32();
    const int64_t* ip = index.data_i64();
    float* op = out.data_f32();
    int64_t n = index.numel();
    for (int64_t i = 0; i < n; ++i) op[gathered_offset(out.shape(), index.shape(), dim, i, ip[i])] += sp[i];
}

}  // namespace td
