// tensor/cpu/memory.cpp: CPU memory, strided copy and fill. (Which backend runs which
// device, backend_for, is in tensor/backend.cpp.)
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/error.h"

namespace td {

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

void coalesce(std::initializer_list<RowLayout*> layouts) {
    RowLayout* first = *layouts.begin();
    for (int64_t d = (int64_t)first->shape.size() - 2; d >= 0; --d) {
        bool mergeable = true;
        for (RowLayout* l : layouts)
            mergeable = mergeable && (l->shape[d] == 1 || l->strides[d] == l->strides[d + 1] * l->shape[d + 1]);
        if (!mergeable) continue;
        for (RowLayout* l : layouts) {  // dim d folds into d + 1, which keeps its stride
            l->shape[d + 1] *= l->shape[d];
            l->shape.erase(l->shape.begin() + d);
            l->strides.erase(l->strides.begin() + d);
        }
    }
}

// ---- memory -------------------------------------------------------------------------------

// A caching allocator. A training step allocates the same buffers every time (im2col
// columns, activations, gradients); large blocks come from mmap, so each fresh one costs
// page faults and the kernel zeroing every page, which showed up as ~10% of a UNet step.
// Freed blocks are therefore kept in free lists by (rounded) size and handed out again
// to the next request of that size, up to kCacheLimit bytes cached. (PyTorch's CUDA
// allocator does the same for the same reason.) Under AddressSanitizer the cache is off
// so that use-after-free is still caught.
#if defined(__SANITIZE_ADDRESS__)
static constexpr bool kCaching = false;
#else
static constexpr bool kCaching = true;
#endif
static constexpr size_t kCacheLimit = size_t(2) << 30;  // 2 GiB of idle blocks at most

namespace {
struct BlockCache {
    std::mutex mu;
    std::unordered_map<size_t, std::vector<void*>> free_blocks;  // rounded size -> idle blocks
    std::unordered_map<void*, size_t> size_of;                   // every live or idle block
    size_t cached_bytes = 0;
};
BlockCache& block_cache() {
    static BlockCache* cache = new BlockCache;  // never destroyed: tensors may outlive static destructors
    return *cache;
}
}  // namespace

static size_t round_size(size_t nbytes) {
    // 64-byte alignment: a cache line, and what AVX-512 loads like best. Sizes round up
    // to 64 B below 4 KiB and to 4 KiB above, so near-equal requests share a free list.
    size_t unit = nbytes < 4096 ? 64 : 4096;
    size_t r = (nbytes + unit - 1) / unit * unit;
    return r == 0 ? 64 : r;
}

void* CpuBackend::allocate(size_t nbytes) {
    size_t rounded = round_size(nbytes);
    if (kCaching) {
        BlockCache& c = block_cache();
        std::lock_guard<std::mutex> lock(c.mu);
        auto it = c.free_blocks.find(rounded);
        if (it != c.free_blocks.end() && !it->second.empty()) {
            void* p = it->second.back();
            it->second.pop_back();
            c.cached_bytes -= rounded;
            return p;
        }
    }
    void* p = std::aligned_alloc(64, rounded);
    check(p != nullptr, "out of memory: could not allocate ", nbytes, " bytes on cpu");
    if (kCaching) {
        BlockCache& c = block_cache();
        std::lock_guard<std::mutex> lock(c.mu);
        c.size_of[p] = rounded;
    }
    return p;
}

void CpuBackend::deallocate(void* ptr) {
    if (!ptr) return;
    if (kCaching) {
        BlockCache& c = block_cache();
        std::lock_guard<std::mutex> lock(c.mu);
        auto it = c.size_of.find(ptr);
        if (it != c.size_of.end() && c.cached_bytes + it->second <= kCacheLimit) {
            c.free_blocks[it->second].push_back(ptr);
            c.cached_bytes += it->second;
            return;
        }
        if (it != c.size_of.end()) c.size_of.erase(it);
    }
    std::free(ptr);
}

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
    coalesce({&ls, &ld});
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
    check(src.shape() == dst.shape(), "copy: shapes ", src.shape(), " and ", dst.shape());
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
    coalesce({&l});
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

// ---- to and from the host: CPU memory is host memory, so a plain memcpy ----------------------

void CpuBackend::copy_from_host(void* dst, const void* host_src, size_t nbytes) { std::memcpy(dst, host_src, nbytes); }
void CpuBackend::copy_to_host(void* host_dst, const void* src, size_t nbytes) { std::memcpy(host_dst, src, nbytes); }

}  // namespace td
