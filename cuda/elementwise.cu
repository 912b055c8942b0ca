// cuda/elementwise.cu: every elementwise op through one kernel. Twin of
// tensor/cpu/elementwise.cpp: the formulas below are the same, in the same order, and
// each op's value f(x) and derivative dy * f'(x) sit side by side.
//
// The kernel: thread t of block b handles the flat indices i = (b * blockDim + t) and
// every gridDim * blockDim after it (a grid-stride loop), computing out[i] from up to
// three inputs. Three paths, the fastest that the operands allow (launch_map):
//   vec4     every operand contiguous and at the same offset from a 16-byte boundary:
//            each thread takes 4 consecutive elements read as one float4 (128-bit loads),
//            so a warp moves 512 bytes per instruction instead of 128, which is what a
//            memory-bound op needs to approach the GPU's bandwidth. Operands that start
//            1-3 floats past a boundary (a view from row 1 of a matrix) first have those
//            elements done one by one, then the rest is aligned.
//   flat     every operand contiguous, not equally aligned: out[i] = f(x[i]), no index math.
//   strided  anything else (transposed views; broadcast inputs, which arrive expanded with
//            stride 0): each operand's offset is computed from i, a div and a mod per dim.
//            A 64-bit division is a software routine of dozens of instructions on the GPU,
//            a 32-bit one a few, so when every index fits 32 bits (n < 2^31, which is
//            every tensor of the UNet) the kernel is instantiated with 32-bit indices.
#include <algorithm>
#include <cstdint>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/strided.cuh"

namespace td {

namespace {

// What the kernel computes: one of three families, the op within it, its parameters.
enum class Family { Unary, UnaryGrad, Binary, Where };
struct MapOp {
    Family family;
    int code;  // a UnaryOp or BinaryOp
    float p0, p1;
};

__device__ float normal_pdf(float x) { return 0.3989422804014327f * expf(-0.5f * x * x); }
__device__ float normal_cdf(float x) { return 0.5f * (1.0f + erff(x * 0.7071067811865476f)); }
__device__ float sigmoid_of(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ float softplus_of(float x, float beta, float threshold) {
    float v = beta * x;
    if (v > threshold) return x;
    return (fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v)))) / beta;
}

// clang-format off
__device__ float unary_value(UnaryOp op, float v, float p0, float p1) {
    switch (op) {
        case UnaryOp::Neg:       return -v;
        case UnaryOp::Exp:       return expf(v);
        case UnaryOp::Log:       return logf(v);
        case UnaryOp::Sqrt:      return sqrtf(v);
        case UnaryOp::Abs:       return fabsf(v);
        case UnaryOp::Tanh:      return tanhf(v);
        case UnaryOp::Sigmoid:   return sigmoid_of(v);
        case UnaryOp::Relu:      return v > 0.0f ? v : 0.0f;
        case UnaryOp::Silu:      return v * sigmoid_of(v);
        case UnaryOp::Gelu:      return v * normal_cdf(v);
        case UnaryOp::Softplus:  return softplus_of(v, p0, p1);
        case UnaryOp::PowScalar: return powf(v, p0);
        case UnaryOp::Clamp:     return fminf(fmaxf(v, p0), p1);
        case UnaryOp::AddScalar: return v + p0;
        case UnaryOp::MulScalar: return v * p0;
    }
    return __int_as_float(0x7fc00000);  // NaN: an op this file does not know
}

// dx = dy * f'(x), in the order of unary_value.
__device__ float unary_grad(UnaryOp op, float v, float g, float p0, float p1) {
    switch (op) {
        case UnaryOp::Neg:       return -g;
        case UnaryOp::Exp:       return g * expf(v);
        case UnaryOp::Log:       return g / v;
        case UnaryOp::Sqrt:      return g * 0.5f / sqrtf(v);
        case UnaryOp::Abs:       return v > 0.0f ? g : (v < 0.0f ? -g : 0.0f);
        case UnaryOp::Tanh:      { float t = tanhf(v); return g * (1.0f - t * t); }
        case UnaryOp::Sigmoid:   { float s = sigmoid_of(v); return g * s * (1.0f - s); }
        case UnaryOp::Relu:      return v > 0.0f ? g : 0.0f;
        case UnaryOp::Silu:      { float s = sigmoid_of(v); return g * s * (1.0f + v * (1.0f - s)); }
        case UnaryOp::Gelu:      return g * (normal_cdf(v) + v * normal_pdf(v));
        case UnaryOp::Softplus:  return p0 * v > p1 ? g : g * sigmoid_of(p0 * v);
        case UnaryOp::PowScalar: return p0 == 0.0f ? 0.0f : g * p0 * powf(v, p0 - 1.0f);
        case UnaryOp::Clamp:     return (v >= p0 && v <= p1) ? g : 0.0f;
        case UnaryOp::AddScalar: return g;
        case UnaryOp::MulScalar: return g * p0;
    }
    return __int_as_float(0x7fc00000);
}

__device__ float binary_value(BinaryOp op, float a, float b) {
    switch (op) {
        case BinaryOp::Add: return a + b;
        case BinaryOp::Sub: return a - b;
        case BinaryOp::Mul: return a * b;
        case BinaryOp::Div: return a / b;
        case BinaryOp::Pow: return powf(a, b);
        case BinaryOp::Gt:  return a > b ? 1.0f : 0.0f;
        case BinaryOp::Lt:  return a < b ? 1.0f : 0.0f;
        case BinaryOp::Eq:  return a == b ? 1.0f : 0.0f;
    }
    return __int_as_float(0x7fc00000);
}
// clang-format on

// out = op(x0, x1, x2): the inputs a family does not use are ignored.
__device__ float apply(const MapOp& m, float x0, float x1, float x2) {
    switch (m.family) {
        case Family::Unary: return unary_value((UnaryOp)m.code, x0, m.p0, m.p1);
        case Family::UnaryGrad: return unary_grad((UnaryOp)m.code, x0, x1, m.p0, m.p1);
        case Family::Binary: return binary_value((BinaryOp)m.code, x0, x1);
        case Family::Where: return x0 != 0.0f ? x1 : x2;
    }
    return __int_as_float(0x7fc00000);
}

// Strided: any layouts. Unused inputs are passed as x0 (never read twice in a way that
// matters). Index: int64_t, or uint32_t when every index fits (see the header).
template <typename Index>
__global__ void map_kernel(MapOp m, int n_in, const float* x0, cuda::Strided l0, const float* x1, cuda::Strided l1,
                           const float* x2, cuda::Strided l2, float* out, cuda::Strided lo, Index n) {
    for (Index i = blockIdx.x * (Index)blockDim.x + threadIdx.x; i < n; i += (Index)gridDim.x * blockDim.x) {
        float a = x0[l0.at<Index>(i)];
        float b = n_in > 1 ? x1[l1.at<Index>(i)] : 0.0f;
        float c = n_in > 2 ? x2[l2.at<Index>(i)] : 0.0f;
        out[lo.at<Index>(i)] = apply(m, a, b, c);
    }
}

// Contiguous, any alignment: element i of every operand is at offset i.
__global__ void map_kernel_flat(MapOp m, int n_in, const float* x0, const float* x1, const float* x2, float* out,
                                int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = apply(m, x0[i], n_in > 1 ? x1[i] : 0.0f, n_in > 2 ? x2[i] : 0.0f);
}

// Contiguous and 16-byte aligned: 4 elements per thread per iteration, as float4; the
// last n % 4 elements by the first threads, one each.
__global__ void map_kernel_vec4(MapOp m, int n_in, const float* x0, const float* x1, const float* x2, float* out,
                                int64_t n) {
    int64_t n4 = n / 4;
    int64_t first = blockIdx.x * (int64_t)blockDim.x + threadIdx.x, step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t q = first; q < n4; q += step) {
        float4 a = reinterpret_cast<const float4*>(x0)[q];
        float4 b = n_in > 1 ? reinterpret_cast<const float4*>(x1)[q] : a;
        float4 c = n_in > 2 ? reinterpret_cast<const float4*>(x2)[q] : a;
        float4 r;
        r.x = apply(m, a.x, b.x, c.x);
        r.y = apply(m, a.y, b.y, c.y);
        r.z = apply(m, a.z, b.z, c.z);
        r.w = apply(m, a.w, b.w, c.w);
        reinterpret_cast<float4*>(out)[q] = r;
    }
    for (int64_t i = 4 * n4 + first; i < n; i += step)
        out[i] = apply(m, x0[i], n_in > 1 ? x1[i] : 0.0f, n_in > 2 ? x2[i] : 0.0f);
}

// Bytes past the last 16-byte boundary.
unsigned misalignment(const void* p) { return (unsigned)(reinterpret_cast<uintptr_t>(p) & 15); }

// Launches the right kernel for out = m(inputs...).
void launch_map(const MapOp& m, const char* what, std::initializer_list<Tensor> inputs, const Tensor& out) {
    int64_t n = out.numel();
    if (n == 0) return;
    const Tensor* in[3] = {nullptr, nullptr, nullptr};
    int n_in = 0;
    for (const Tensor& t : inputs) in[n_in++] = &t;
    bool contiguous = out.is_contiguous(), same_alignment = true;
    for (int k = 0; k < n_in; ++k) {
        contiguous = contiguous && in[k]->is_contiguous();
        same_alignment = same_alignment && misalignment(in[k]->data_f32()) == misalignment(out.data_f32());
    }
    const float* p[3];
    for (int k = 0; k < 3; ++k) p[k] = (k < n_in ? in[k] : in[0])->data_f32();
    float* o = out.data_f32();
    const int threads = 256;  // 8 warps per block; the grid is capped and the loop strides
    if (contiguous && same_alignment) {
        // The first `head` elements (0-3) bring every pointer to a 16-byte boundary; a float
        // pointer is 4-byte aligned, so the misalignment is 0, 4, 8 or 12 bytes.
        const int64_t head = std::min<int64_t>(n, (16 - misalignment(o)) % 16 / 4);
        if (head > 0) {
            map_kernel_flat<<<1, 32>>>(m, n_in, p[0], p[1], p[2], o, head);
            cuda::check_launch(what);
        }
        if (n > head) {
            const unsigned blocks = std::min(cuda::blocks_for((n - head + 3) / 4, threads), 8192u);
            map_kernel_vec4<<<blocks, threads>>>(m, n_in, p[0] + head, p[1] + head, p[2] + head, o + head, n - head);
        }
    } else if (contiguous) {
        map_kernel_flat<<<cuda::grid_stride_blocks(n, threads), threads>>>(m, n_in, p[0], p[1], p[2], o, n);
    } else {
        cuda::Strided l[3];
        for (int k = 0; k < 3; ++k) l[k] = cuda::strided(*(k < n_in ? in[k] : in[0]));
        const cuda::Strided lo = cuda::strided(out);
        unsigned blocks = cuda::grid_stride_blocks(n, threads);
        // 32-bit indices when n and every offset an operand can reach fit (the loop's
        // i + gridDim * blockDim too: hence the margin of one grid below 2^32).
        bool fits32 = n + (int64_t)blocks * threads < (int64_t(1) << 32);
        for (int k = 0; k < n_in; ++k) fits32 = fits32 && l[k].max_offset() < (int64_t(1) << 31);
        fits32 = fits32 && lo.max_offset() < (int64_t(1) << 31);
        if (fits32)
            map_kernel<uint32_t><<<blocks, threads>>>(m, n_in, p[0], l[0], p[1], l[1], p[2], l[2], o, lo, (uint32_t)n);
        else map_kernel<int64_t><<<blocks, threads>>>(m, n_in, p[0], l[0], p[1], l[1], p[2], l[2], o, lo, n);
    }
    cuda::check_launch(what);
}

}  // namespace

void CudaBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out, float p0, float p1) {
    launch_map({Family::Unary, (int)op, p0, p1}, "map_kernel (unary)", {x}, out);
}

void CudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& dy, const Tensor& dx, float p0, float p1) {
    launch_map({Family::UnaryGrad, (int)op, p0, p1}, "map_kernel (unary backward)", {x, dy}, dx);
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
    launch_map({Family::Binary, (int)op, 0.0f, 0.0f}, "map_kernel (binary)", {a, b}, out);
}

void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
    launch_map({Family::Where, 0, 0.0f, 0.0f}, "map_kernel (where)", {cond, a, b}, out);
}

}  // namespace td
