// tensor/cpu/memory.cpp: CPU memory, strided copy and fill, and the backend registry.
#include <cstdlib>
#include <cstring>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/error.h"

namespace td {

// ---- registry: which backend runs which device -------------------------------------------

static Backend* g_cuda_backend = nullptr;

Backend& backend_for(Device device) {
    static CpuBackend cpu;  // built on first use: no static-initialisation-order surprises
    if (device == Device::CPU) return cpu;
    check(g_cuda_backend != nullptr, "no CUDA backend in this build (rebuild with nvcc found, and run on a GPU)");
    return *g_cuda_backend;
}

void register_backend(Device device, Backend* backend) {
    check(device == Device::CUDA, "register_backend: the CPU backend is built in");
    g_cuda_backend = backend;
}

// ---- row walking ----------------------------------------------------------------------

int64_t RowLayout::rows() const {
    int64_t r = 1;
    for (size_t d = 0; d + 1 < shape.size(); ++d) r *= shape[d];
    return r;
}

RowLayout row_layout(const Tensor& t) {
    if (t.dim() == 0) return {{1}, {1}};
    return {t.shape(), t.strides()};
}

int64_t row_offset(const RowLayout& layout, int64_t row) {
    int64_t off = 0;
    for (int64_t d = (int64_t)layout.shape.size() - 2; d >= 0; --d) {
        off += (row % layout.shape[d]) * layout.strides[d];
        row /= layout.shape[d];
    }
    return off;
}

// ---- memory -------------------------------------------------------------------------------

void* CpuBackend::allocate(size_t nbytes) {
    // 64-byte alignment: a cache line, and what AVX-512 loads like best.
    size_t rounded = (nbytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void* p = std::aligned_alloc(64, rounded);
    check(p != nullptr, "out of memory: could not allocate ", nbytes, " bytes on cpu");
    return p;
}

void CpuBackend::deallocate(void* ptr) { std::free(ptr); }

// dst = src elementwise, any strides, converting the element type on the way.
template <typename Src, typename Dst>
static void copy_typed(const Tensor& src, const Tensor& dst) {
    const Src* s = static_cast<const Src*>(src.impl()->storage->data) + src.offset();
    Dst* d = static_cast<Dst*>(dst.impl()->storage->data) + dst.offset();
    if (src.is_contiguous() && dst.is_contiguous()) {
        int64_t n = src.numel();
#pragma omp parallel for if (n > 32768)
        for (int64_t i = 0; i < n; ++i) d[i] = (Dst)s[i];
        return;
    }
    RowLayout ls = row_layout(src), ld = row_layout(dst);
    int64_t rows = ls.rows(), len = ls.row_len();
    int64_t ss = ls.strides.back(), ds = ld.strides.back();
#pragma omp parallel for if (rows * len > 32768)
    for (int64_t r = 0; r < rows; ++r) {
        const Src* srow = s + row_offset(ls, r);
        Dst* drow = d + row_offset(ld, r);
        for (int64_t j = 0; j < len; ++j) drow[j * ds] = (Dst)srow[j * ss];
    }
}

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
    check(src.shape() == dst.shape(), "copy: shapes ", shape_str(src.shape()), " and ", shape_str(dst.shape()));
    bool sf = src.dtype() == DType::Float32, df = dst.dtype() == DType::Float32;
    if (sf && df) copy_typed<float, float>(src, dst);
    else if (sf && !df) copy_typed<float, int64_t>(src, dst);
    else if (!sf && df) copy_typed<int64_t, float>(src, dst);
    else copy_typed<int64_t, int64_t>(src, dst);
}

template <typename T>
static void fill_typed(const Tensor& dst, T value) {
    T* d = static_cast<T*>(dst.impl()->storage->data) + dst.offset();
    RowLayout l = row_layout(dst);
    int64_t rows = l.rows(), len = l.row_len(), st = l.strides.back();
#pragma omp parallel for if (rows * len > 32768)
    for (int64_t r = 0; r < rows; ++r) {
        T* row = d + row_offset(l, r);
        for (int64_t j = 0; j < len; ++j) row[j * st] = value;
    }
}

void CpuBackend::fill(const Tensor& dst, double value) {
    if (dst.dtype() == DType::Float32) fill_typed<float>(dst, (float)value);
    else fill_typed<int64_t>(dst, (int64_t)value);
}

}  // namespace td
