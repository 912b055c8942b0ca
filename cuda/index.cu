// cuda/index.cu: index_select / index_add and gather / scatter_add, the twin of
// tensor/cpu/index.cpp. Each pair is a forward and its backward: reading x at chosen
// positions, then adding the incoming gradient back at the same positions.
//
// Every kernel: one thread per element of the tensor it walks (out for the reads, src for
// the adds), in a grid-stride loop, flat index f in row-major order, so consecutive threads
// handle consecutive elements: their reads of x (index_select, along the innermost dim)
// and their writes to out coalesce. The index values were range-checked by the op
// (tensor/ops/index.cpp), as the CPU kernels assume too.
//
// The adds use atomicAdd, and must: an index may repeat (index = [2, 2] in an embedding
// lookup, or a gather that read one element of x twice), and then two threads add to the
// same element of out at the same time. A plain `*p += v` is a load, an add and a
// store; two threads interleaving them lose one of the additions. atomicAdd makes each
// read-modify-write indivisible. What it does not fix is the order: the threads' sums
// arrive in whatever order they run, and float addition is not associative, so where an
// index repeats the result can differ in its last bits from run to run (and from the CPU,
// which adds in order of i). Where no index repeats, every element of out receives one
// addition and the result is exact and reproducible.
#include <cstdint>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/strided.cuh"

namespace td {

namespace {

constexpr int kThreads = 256;  // 8 warps per block
unsigned grid_for(int64_t n) { return cuda::grid_stride_blocks(n, kThreads); }

// x viewed as (outer, size_along_dim, inner), contiguous (as in tensor/cpu/index.cpp).
struct ThreeD {
    int64_t outer, mid, inner;
};
ThreeD around(const Shape& s, int64_t dim) {
    ThreeD t{1, s.empty() ? 1 : s[dim], 1};
    for (int64_t d = 0; d < dim; ++d) t.outer *= s[d];
    for (size_t d = dim + 1; d < s.size(); ++d) t.inner *= s[d];
    return t;
}

void check_on_cuda(const Tensor& t, const char* op, const char* name) {
    check(t.device() == Device::CUDA, op, " (cuda): ", name, " is on ", device_name(t.device()),
          "; every tensor of the op must be on cuda");
    check(t.is_contiguous(), op, " (cuda): ", name, " must be contiguous");
}

// ---- index_select / index_add ---------------------------------------------------------------

// out[o, i, k] = x[o, index[i], k]; thread f: the element f = (o n + i) inner + k of out.
__global__ void index_select_kernel(const float* x, const int64_t* index, float* out, ThreeD xs, int64_t n,
                                    int64_t total) {
    for (int64_t f = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; f < total; f += (int64_t)gridDim.x * blockDim.x) {
        int64_t k = f % xs.inner, rest = f / xs.inner;
        int64_t i = rest % n, o = rest / n;
        out[f] = x[(o * xs.mid + index[i]) * xs.inner + k];
    }
}

// out[o, index[i], k] += src[o, i, k]; thread f: the element f of src (same layout as above).
__global__ void index_add_kernel(float* out, const int64_t* index, const float* src, ThreeD os, int64_t n,
                                 int64_t total) {
    for (int64_t f = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; f < total; f += (int64_t)gridDim.x * blockDim.x) {
        int64_t k = f % os.inner, rest = f / os.inner;
        int64_t i = rest % n, o = rest / n;
        atomicAdd(&out[(o * os.mid + index[i]) * os.inner + k], src[f]);  // index[i] may repeat: see the header
    }
}

// ---- gather / scatter_add ---------------------------------------------------------------------

// The shapes gathered_offset needs, by value in the kernel's parameters.
struct GatherShapes {
    int rank;
    int64_t target[cuda::kMaxDims];  // the tensor read (gather's x) or added to (scatter_add's out)
    int64_t index[cuda::kMaxDims];   // the index tensor (and src, out of gather)
};

GatherShapes gather_shapes(const Tensor& target, const Tensor& index, const char* op) {
    check(target.dim() == index.dim(), op, " (cuda): index of shape ", index.shape(), " and tensor of shape ",
          target.shape(), " differ in rank");
    check(index.dim() <= cuda::kMaxDims, op, " (cuda): tensors of more than ", cuda::kMaxDims,
          " dims are not supported, got ", index.shape());
    GatherShapes s{};
    s.rank = (int)index.dim();
    for (int d = 0; d < s.rank; ++d) {
        s.target[d] = target.shape()[d];
        s.index[d] = index.shape()[d];
    }
    return s;
}

// Offset in the contiguous target of the multi-index of element `flat` of the index
// tensor, with the coordinate along `dim` replaced by `along` (tensor/cpu/index.cpp's
// gathered_offset): peel the coordinates off from the last dim, as strided.cuh does.
__device__ int64_t gathered_offset(const GatherShapes& s, int dim, int64_t flat, int64_t along) {
    int64_t off = 0, stride = 1;
    for (int d = s.rank - 1; d >= 0; --d) {
        int64_t coord = flat % s.index[d];
        flat /= s.index[d];
        off += (d == dim ? along : coord) * stride;
        stride *= s.target[d];
    }
    return off;
}

// out[f] = x[f's multi-index with coordinate dim replaced by index[f]]; thread f: element f of out.
__global__ void gather_kernel(const float* x, const int64_t* index, float* out, GatherShapes s, int dim,
                              int64_t total) {
    for (int64_t f = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; f < total; f += (int64_t)gridDim.x * blockDim.x)
        out[f] = x[gathered_offset(s, dim, f, index[f])];
}

// out[f's multi-index with coordinate dim replaced by index[f]] += src[f]; thread f: element f of src.
__global__ void scatter_add_kernel(float* out, const int64_t* index, const float* src, GatherShapes s, int dim,
                                   int64_t total) {
    for (int64_t f = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; f < total; f += (int64_t)gridDim.x * blockDim.x)
        atomicAdd(&out[gathered_offset(s, dim, f, index[f])], src[f]);  // targets may repeat: see the header
}

}  // namespace

// out = x.index_select(dim, index): out[o, i, :] = x[o, index[i], :]
void CudaBackend::index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
    check_on_cuda(x, "index_select", "x");
    check_on_cuda(index, "index_select", "index");
    check_on_cuda(out, "index_select", "out");
    ThreeD xs = around(x.shape(), dim);
    int64_t n = index.numel(), total = xs.outer * n * xs.inner;
    check(out.numel() == total, "index_select (cuda): out has ", out.numel(), " elements, expected ", total);
    if (total == 0) return;
    index_select_kernel<<<grid_for(total), kThreads>>>(x.data_f32(), index.data_i64(), out.data_f32(), xs, n, total);
    cuda::check_launch("index_select_kernel");
}

// out[o, index[i], :] += src[o, i, :]; out zeroed by the caller (the backward of index_select)
void CudaBackend::index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
    check_on_cuda(out, "index_add", "out");
    check_on_cuda(index, "index_add", "index");
    check_on_cuda(src, "index_add", "src");
    ThreeD os = around(out.shape(), dim);
    int64_t n = index.numel(), total = os.outer * n * os.inner;
    check(src.numel() == total, "index_add (cuda): src has ", src.numel(), " elements, expected ", total);
    if (total == 0) return;
    index_add_kernel<<<grid_for(total), kThreads>>>(out.data_f32(), index.data_i64(), src.data_f32(), os, n, total);
    cuda::check_launch("index_add_kernel");
}

// out[i] = x[i with coordinate dim replaced by index[i]]
void CudaBackend::gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
    check_on_cuda(x, "gather", "x");
    check_on_cuda(index, "gather", "index");
    check_on_cuda(out, "gather", "out");
    GatherShapes s = gather_shapes(x, index, "gather");
    int64_t total = index.numel();
    check(out.numel() == total, "gather (cuda): out has ", out.numel(), " elements, expected ", total);
    if (total == 0) return;
    gather_kernel<<<grid_for(total), kThreads>>>(x.data_f32(), index.data_i64(), out.data_f32(), s, (int)dim, total);
    cuda::check_launch("gather_kernel");
}

// out[i with coordinate dim replaced by index[i]] += src[i]; out zeroed by the caller (gather's backward)
void CudaBackend::scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
    check_on_cuda(out, "scatter_add", "out");
    check_on_cuda(index, "scatter_add", "index");
    check_on_cuda(src, "scatter_add", "src");
    GatherShapes s = gather_shapes(out, index, "scatter_add");
    int64_t total = index.numel();
    check(src.numel() == total, "scatter_add (cuda): src has ", src.numel(), " elements, expected ", total);
    if (total == 0) return;
    scatter_add_kernel<<<grid_for(total), kThreads>>>(out.data_f32(), index.data_i64(), src.data_f32(), s, (int)dim,
                                                      total);
    cuda::check_launch("scatter_add_kernel");
}

}  // namespace td
