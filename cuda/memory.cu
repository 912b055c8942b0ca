// cuda/memory.cu: GPU memory (a caching allocator), strided copy and fill, and the
// host <-> device byte copies behind Tensor::to(Device). Twin of tensor/cpu/memory.cpp.
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/strided.cuh"

namespace td {

// ---- the caching allocator ---------------------------------------------------------------
//
// cudaMalloc and cudaFree are slow (cudaFree synchronises the whole device), and a
// training step asks for the same buffers every time. So freed blocks are kept in free
// lists by rounded size and handed out again, as PyTorch's CUDA allocator does. All work
// runs on the one default stream, in order, so a block freed by one op may be reused by
// the next op at once: the GPU finishes the first before it starts the second.
// When cudaMalloc fails, the idle blocks are released and it is tried once more.

namespace {
struct DeviceCache {
    std::mutex mu;
    std::unordered_map<size_t, std::vector<void*>> free_blocks;  // rounded size -> idle blocks
    std::unordered_map<void*, size_t> size_of;                   // every block we own
    size_t cached_bytes = 0;
};
DeviceCache& device_cache() {
    static DeviceCache* cache = new DeviceCache;  // never destroyed: tensors may outlive static destructors
    return *cache;
}

// 512-byte units below 1 MiB, 2 MiB units above: near-equal requests share a list,
// and big blocks waste at most 2 MiB each.
size_t round_size(size_t nbytes) {
    size_t unit = nbytes < (1u << 20) ? 512 : (2u << 20);
    size_t r = (nbytes + unit - 1) / unit * unit;
    return r == 0 ? 512 : r;
}

void release_idle_blocks(DeviceCache& c) {
    for (auto& [size, blocks] : c.free_blocks)
        for (void* p : blocks) {
            cudaFree(p);
            c.size_of.erase(p);
        }
    c.free_blocks.clear();
    c.cached_bytes = 0;
}
}  // namespace

void* CudaBackend::allocate(size_t nbytes) {
    size_t rounded = round_size(nbytes);
    DeviceCache& c = device_cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(rounded);
    if (it != c.free_blocks.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        c.cached_bytes -= rounded;
        return p;
    }
    void* p = nullptr;
    if (cudaMalloc(&p, rounded) != cudaSuccess) {
        cudaGetLastError();  // clear the out-of-memory error, free the cache, try once more
        release_idle_blocks(c);
        cudaError_t err = cudaMalloc(&p, rounded);
        if (err != cudaSuccess) {
            cudaGetLastError();
            size_t free_b = 0, total_b = 0;
            cudaMemGetInfo(&free_b, &total_b);
            fail("out of memory: could not allocate ", nbytes, " bytes on cuda (", free_b >> 20, " MiB free of ",
                 total_b >> 20, " MiB)");
        }
    }
    c.size_of[p] = rounded;
    return p;
}

void CudaBackend::deallocate(void* ptr) {
    if (!ptr) return;
    DeviceCache& c = device_cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.size_of.find(ptr);
    if (it == c.size_of.end()) return;  // not ours (cannot happen through Storage)
    c.free_blocks[it->second].push_back(ptr);
    c.cached_bytes += it->second;
}

// ---- strided copy and fill ------------------------------------------------------------------
//
// One thread per element of dst, in a grid-stride loop (a grid of a few thousand
// blocks covers any size): thread i reads src at src's offset of flat index i and
// writes dst at dst's. Consecutive threads read consecutive flat indices, so when both
// tensors are contiguous the warp's 32 accesses are one coalesced transaction.

template <typename Src, typename Dst>
__global__ void copy_kernel(const Src* src, cuda::Strided ls, Dst* dst, cuda::Strided ld, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[ld.at(i)] = (Dst)src[ls.at(i)];
}

template <typename T>
__global__ void fill_kernel(T* dst, cuda::Strided ld, T value, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[ld.at(i)] = value;
}

static constexpr int kThreads = 256;  // 8 warps: enough to hide memory latency, any GPU runs it
static unsigned grid_for(int64_t n) { return cuda::grid_stride_blocks(n, kThreads); }

template <typename Src, typename Dst>
static void copy_typed(const Tensor& src, const Tensor& dst) {
    int64_t n = dst.numel();
    if (n == 0) return;
    const Src* s = static_cast<const Src*>(src.impl()->storage->data) + src.offset();
    Dst* d = static_cast<Dst*>(dst.impl()->storage->data) + dst.offset();
    copy_kernel<Src, Dst><<<grid_for(n), kThreads>>>(s, cuda::strided(src), d, cuda::strided(dst), n);
    cuda::check_launch("copy_kernel");
}

void CudaBackend::copy(const Tensor& src, const Tensor& dst) {
    check(src.shape() == dst.shape(), "copy: shapes ", src.shape(), " and ", dst.shape());
    check(src.device() == Device::CUDA && dst.device() == Device::CUDA,
          "cuda copy: both tensors must be on cuda (Tensor::to moves them between devices)");
    bool sf = src.dtype() == DType::Float32, df = dst.dtype() == DType::Float32;
    if (sf && df) copy_typed<float, float>(src, dst);
    else if (sf && !df) copy_typed<float, int64_t>(src, dst);
    else if (!sf && df) copy_typed<int64_t, float>(src, dst);
    else copy_typed<int64_t, int64_t>(src, dst);
}

void CudaBackend::fill(const Tensor& dst, double value) {
    int64_t n = dst.numel();
    if (n == 0) return;
    if (dst.dtype() == DType::Float32)
        fill_kernel<float><<<grid_for(n), kThreads>>>(dst.data_f32(), cuda::strided(dst), (float)value, n);
    else fill_kernel<int64_t><<<grid_for(n), kThreads>>>(dst.data_i64(), cuda::strided(dst), (int64_t)value, n);
    cuda::check_launch("fill_kernel");
}

// ---- between host and device ---------------------------------------------------------------
//
// The raw bytes behind Tensor::to(Device): tensor/device.cpp makes the source contiguous
// and calls these with one block. cudaMemcpy first waits for the kernels queued before it
// (so it copies their results), and returns once the host buffer has been read (to the
// device) or filled (to the host): the caller may reuse or read it at once.

void CudaBackend::copy_from_host(void* dst, const void* host_src, size_t nbytes) {
    cuda::check_cuda(cudaMemcpy(dst, host_src, nbytes, cudaMemcpyHostToDevice),
                     "cudaMemcpy host -> device (copy_from_host)");
}

void CudaBackend::copy_to_host(void* host_dst, const void* src, size_t nbytes) {
    cuda::check_cuda(cudaMemcpy(host_dst, src, nbytes, cudaMemcpyDeviceToHost),
                     "cudaMemcpy device -> host (copy_to_host)");
}

}  // namespace td
