// tensor/cpu/elementwise.cpp: elementwise kernels on the CPU.
//
// Each op's formula appears twice, side by side in the two switches below: its value
// f(x) in unary(), its derivative dx = dy * f'(x) in unary_backward(). The map_*
// helpers own the looping: a flat loop when every operand is contiguous (the common
// case, which the compiler vectorises), else a walk row by row over the strides
// (a broadcast operand simply has stride 0).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/fast_exp.h"
#include "tensor/error.h"

namespace td {

static constexpr int64_t kParallelMin = 32768;  // below this, threads cost more than they save

// out[i] = f(x[i])
template <typename F>
static void map_unary(const Tensor& x, const Tensor& out, F f) {
    const float* xp = x.data_f32();
    float* op = out.data_f32();
    if (x.is_contiguous() && out.is_contiguous()) {
        int64_t n = out.numel();
#pragma omp parallel for if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) op[i] = f(xp[i]);
        return;
    }
    RowLayout lx = row_layout(x), lo = row_layout(out);
    coalesce({&lx, &lo});
    int64_t rows = lo.rows(), len = lo.row_len(), sx = lx.strides.back(), so = lo.strides.back();
#pragma omp parallel for if (rows * len > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = xp + row_offset(lx, r);
        float* orow = op + row_offset(lo, r);
        for (int64_t j = 0; j < len; ++j) orow[j * so] = f(xr[j * sx]);
    }
}

// out[i] = f(a[i], b[i])
template <typename F>
static void map_binary(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
    const float* ap = a.data_f32();
    const float* bp = b.data_f32();
    float* op = out.data_f32();
    if (a.is_contiguous() && b.is_contiguous() && out.is_contiguous()) {
        int64_t n = out.numel();
#pragma omp parallel for if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) op[i] = f(ap[i], bp[i]);
        return;
    }
    RowLayout la = row_layout(a), lb = row_layout(b), lo = row_layout(out);
    coalesce({&la, &lb, &lo});
    int64_t rows = lo.rows(), len = lo.row_len();
    int64_t sa = la.strides.back(), sb = lb.strides.back(), so = lo.strides.back();
    // Work items are pieces of rows, so that one long row (a scalar broadcast over a whole
    // tensor coalesces into a single row) still spreads over the threads. The common
    // broadcasts get loops of their own, with the strides known to be 1 or 0, which the
    // compiler vectorises; the general loop with run-time strides does not vectorise.
    const int64_t piece = 8192, pieces = (len + piece - 1) / piece;
#pragma omp parallel for if (rows * len > kParallelMin)
    for (int64_t item = 0; item < rows * pieces; ++item) {
        const int64_t r = item / pieces, j0 = (item % pieces) * piece, n = std::min(piece, len - j0);
        const float* ar = ap + row_offset(la, r) + j0 * sa;
        const float* br = bp + row_offset(lb, r) + j0 * sb;
        float* orow = op + row_offset(lo, r) + j0 * so;
        if (so == 1 && sa == 1 && sb == 0) {  // x + bias, x > threshold, ...
            const float bv = br[0];
            for (int64_t j = 0; j < n; ++j) orow[j] = f(ar[j], bv);
        } else if (so == 1 && sa == 0 && sb == 1) {
            const float av = ar[0];
            for (int64_t j = 0; j < n; ++j) orow[j] = f(av, br[j]);
        } else if (so == 1 && sa == 1 && sb == 1) {
            for (int64_t j = 0; j < n; ++j) orow[j] = f(ar[j], br[j]);
        } else {
            for (int64_t j = 0; j < n; ++j) orow[j * so] = f(ar[j * sa], br[j * sb]);
        }
    }
}

// The standard normal density and CDF, for the exact GELU.
static inline float normal_pdf(float x) { return 0.3989422804014327f * std::exp(-0.5f * x * x); }
static inline float normal_cdf(float x) { return 0.5f * (1.0f + std::erf(x * 0.7071067811865476f)); }

// softplus(x) = log(1 + e^(beta x)) / beta, written as (max(v, 0) + log(1 + e^-|v|)) / beta
// with v = beta x: e^-|v| <= 1 never overflows, where e^v itself would for v > 88 (a
// threshold above 88). Above the threshold it is x itself, as in PyTorch.
static inline float softplus_of(float x, float beta, float threshold) {
    float v = beta * x;
    if (v > threshold) return x;
    return (std::fmax(v, 0.0f) + std::log1p(std::exp(-std::fabs(v)))) / beta;
}

// clang-format off
void CpuBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out, float p0, float p1) {
    switch (op) {
        case UnaryOp::Neg:       return map_unary(x, out, [](float v) { return -v; });
        case UnaryOp::Exp:       return map_unary(x, out, [](float v) { return std::exp(v); });
        case UnaryOp::Log:       return map_unary(x, out, [](float v) { return std::log(v); });
        case UnaryOp::Sqrt:      return map_unary(x, out, [](float v) { return std::sqrt(v); });
        case UnaryOp::Abs:       return map_unary(x, out, [](float v) { return std::fabs(v); });
        case UnaryOp::Tanh:      return map_unary(x, out, [](float v) { return std::tanh(v); });
        case UnaryOp::Sigmoid:   return map_unary(x, out, [](float v) { return sigmoid_of(v); });
        case UnaryOp::Relu:      return map_unary(x, out, [](float v) { return v > 0.0f ? v : 0.0f; });
        case UnaryOp::Silu:      return map_unary(x, out, [](float v) { return v * sigmoid_of(v); });
        case UnaryOp::Gelu:      return map_unary(x, out, [](float v) { return v * normal_cdf(v); });
        case UnaryOp::Softplus:  return map_unary(x, out, [p0, p1](float v) { return softplus_of(v, p0, p1); });
        case UnaryOp::PowScalar: return map_unary(x, out, [p0](float v) { return std::pow(v, p0); });
        case UnaryOp::Clamp:     return map_unary(x, out, [p0, p1](float v) { return std::fmin(std::fmax(v, p0), p1); });
        case UnaryOp::AddScalar: return map_unary(x, out, [p0](float v) { return v + p0; });
        case UnaryOp::MulScalar: return map_unary(x, out, [p0](float v) { return v * p0; });
    }
    fail("unary: unknown op");
}

// dx = dy * f'(x): the local derivative of each op above, in the same order.
void CpuBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& dy, const Tensor& dx, float p0,
                                float p1) {
    switch (op) {
        case UnaryOp::Neg:  return map_binary(x, dy, dx, [](float, float g) { return -g; });
        case UnaryOp::Exp:  return map_binary(x, dy, dx, [](float v, float g) { return g * std::exp(v); });
        case UnaryOp::Log:  return map_binary(x, dy, dx, [](float v, float g) { return g / v; });
        case UnaryOp::Sqrt: return map_binary(x, dy, dx, [](float v, float g) { return g * 0.5f / std::sqrt(v); });
        // d|x|/dx = sign(x), and 0 at 0 (PyTorch's choice)
        case UnaryOp::Abs:  return map_binary(x, dy, dx, [](float v, float g) {
            return v > 0.0f ? g : (v < 0.0f ? -g : 0.0f); });
        case UnaryOp::Tanh: return map_binary(x, dy, dx, [](float v, float g) {
            float t = std::tanh(v); return g * (1.0f - t * t); });
        case UnaryOp::Sigmoid: return map_binary(x, dy, dx, [](float v, float g) {
            float s = sigmoid_of(v); return g * s * (1.0f - s); });
        case UnaryOp::Relu: return map_binary(x, dy, dx, [](float v, float g) { return v > 0.0f ? g : 0.0f; });
        // silu = x s(x);  silu' = s(x) (1 + x (1 - s(x)))
        case UnaryOp::Silu: return map_binary(x, dy, dx, [](float v, float g) {
            float s = sigmoid_of(v); return g * s * (1.0f + v * (1.0f - s)); });
        // gelu = x Phi(x);  gelu' = Phi(x) + x phi(x)
        case UnaryOp::Gelu: return map_binary(x, dy, dx, [](float v, float g) {
            return g * (normal_cdf(v) + v * normal_pdf(v)); });
        // softplus' = sigmoid(beta x), and 1 above the threshold (where the forward is x itself)
        case UnaryOp::Softplus: return map_binary(x, dy, dx, [p0, p1](float v, float g) {
            return p0 * v > p1 ? g : g * sigmoid_of(p0 * v); });
        case UnaryOp::PowScalar: return map_binary(x, dy, dx, [p0](float v, float g) {
            return p0 == 0.0f ? 0.0f : g * p0 * std::pow(v, p0 - 1.0f); });
        // gradient passes where lo <= x <= hi (PyTorch's convention at the edges)
        case UnaryOp::Clamp: return map_binary(x, dy, dx, [p0, p1](float v, float g) {
            return (v >= p0 && v <= p1) ? g : 0.0f; });
        case UnaryOp::AddScalar: return map_binary(x, dy, dx, [](float, float g) { return g; });
        case UnaryOp::MulScalar: return map_binary(x, dy, dx, [p0](float, float g) { return g * p0; });
    }
    fail("unary_backward: unknown op");
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
    switch (op) {
        case BinaryOp::Add: return map_binary(a, b, out, [](float x, float y) { return x + y; });
        case BinaryOp::Sub: return map_binary(a, b, out, [](float x, float y) { return x - y; });
        case BinaryOp::Mul: return map_binary(a, b, out, [](float x, float y) { return x * y; });
        case BinaryOp::Div: return map_binary(a, b, out, [](float x, float y) { return x / y; });
        case BinaryOp::Pow: return map_binary(a, b, out, [](float x, float y) { return std::pow(x, y); });
        case BinaryOp::Gt:  return map_binary(a, b, out, [](float x, float y) { return x > y ? 1.0f : 0.0f; });
        case BinaryOp::Lt:  return map_binary(a, b, out, [](float x, float y) { return x < y ? 1.0f : 0.0f; });
        case BinaryOp::Eq:  return map_binary(a, b, out, [](float x, float y) { return x == y ? 1.0f : 0.0f; });
    }
    fail("binary: unknown op");
}
// clang-format on

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
    const float* cp = cond.data_f32();
    const float* ap = a.data_f32();
    const float* bp = b.data_f32();
    float* op = out.data_f32();
    RowLayout lc = row_layout(cond), la = row_layout(a), lb = row_layout(b), lo = row_layout(out);
    coalesce({&lc, &la, &lb, &lo});
    int64_t rows = lo.rows(), len = lo.row_len();
    int64_t sc = lc.strides.back(), sa = la.strides.back(), sb = lb.strides.back(), so = lo.strides.back();
#pragma omp parallel for if (rows * len > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const float* cr = cp + row_offset(lc, r);
        const float* ar = ap + row_offset(la, r);
        const float* br = bp + row_offset(lb, r);
        float* orow = op + row_offset(lo, r);
        for (int64_t j = 0; j < len; ++j) orow[j * so] = cr[j * sc] != 0.0f ? ar[j * sa] : br[j * sb];
    }
}

}  // namespace td
