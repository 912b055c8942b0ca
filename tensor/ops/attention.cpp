// tensor/ops/attention.cpp: scaled dot-product attention (Vaswani et al. 2017, eq. 1),
// Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V, as ONE recorded op whose backward is
// written out here by hand (the llm.c way) instead of being left to the matmuls and the
// softmax it is made of. Both directions run straight on the backend kernels, recording
// nothing, along one of two paths:
//
// The COMPOSED path: batched matmuls and a softmax.
// The leading dims of q, k, v (batch, heads) are one batch of B matrices:
//   Q (B, Lq, d), K (B, Lk, d), V (B, Lk, dv), scale = 1 / sqrt(d).
// Forward (P is saved for the backward):
//   S = Q K^T * scale                (B, Lq, d) x (B, d, Lk) -> (B, Lq, Lk)
//   P = softmax(S)                   along Lk: each query's distribution over the keys
//   O = P V                          (B, Lq, Lk) x (B, Lk, dv) -> (B, Lq, dv)
// Backward, from dO = dL/dO (B, Lq, dv):
// BEGIN HIDE attention-backward
// STUB: //   (derived in the assignment attention-backward)
//   dV = P^T dO                      (B, Lk, Lq) x (B, Lq, dv) -> (B, Lk, dv)
//   dP = dO V^T                      (B, Lq, dv) x (B, dv, Lk) -> (B, Lq, Lk)
//   dS = P * (dP - rowsum(dP * P))   softmax's backward; rowsum over Lk, one number per query
//   dQ = dS K * scale                (B, Lq, Lk) x (B, Lk, d) -> (B, Lq, d)
//   dK = dS^T Q * scale              (B, Lk, Lq) x (B, Lq, d) -> (B, Lk, d)
// END HIDE attention-backward
//
// The FUSED path (flash-attention style): the backend's attention_forward and
// attention_backward (tensor/backend.h; the math in tensor/cpu/attention.cpp, the GPU
// kernels in cuda/attention.cu). They compute the same O and gradients one row at a time
// with an online softmax and never store the (Lq, Lk) matrix P: the forward saves only
// lse (B, Lq), each row's log-sum-exp, and the backward rebuilds P = exp(S - lse) as it
// goes. Memory O(L) instead of O(L^2), and one pass over K and V instead of three kernels.
//
// Which path runs:
//   on the CPU        composed (Eigen's GEMMs beat the fused loops there; P fits in memory)
//   on other devices  fused, unless d or dv > 512 (the CUDA kernels keep a row's d / 32
//                     elements per lane in registers, at most 16): then composed
// and the environment variable TD_ATTENTION, read once, at the first call, overrides it:
//   TD_ATTENTION=fused      fused on the CPU too (the GPU keeps its limit of 512)
//   TD_ATTENTION=composed   composed everywhere
// Both paths record the same op, "scaled_dot_product_attention", with the same inputs.
#include <cmath>
#include <cstdlib>
#include <string>

#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td {

namespace {

// t (..., R, C) as a contiguous (B, R, C) tensor, detached (a copy only when t is not
// contiguous already, e.g. the permuted view split_heads makes).
Tensor as_matrices(const Tensor& t, int64_t B) { return t.detach().contiguous().view({B, t.size(-2), t.size(-1)}); }

// a (B, M, K) @ b (B, K, N) -> (B, M, N) on the backend, nothing recorded. a and b may be
// transposed views (.transpose(1, 2)) of contiguous tensors: the kernel reads them in place.
Tensor bmm(const Tensor& a, const Tensor& b) {
    Tensor out = Tensor::empty({a.size(0), a.size(1), b.size(2)}, DType::Float32, a.device());
    backend_for(a.device()).matmul(a, b, out);
    return out;
}

// (B, R, C) -> (B, C, R), a view
Tensor T(const Tensor& m) { return m.transpose(1, 2); }

// x * s on the backend, nothing recorded
Tensor scaled(const Tensor& x, float s) {
    Tensor out = Tensor::empty(x.shape(), DType::Float32, x.device());
    backend_for(x.device()).unary(UnaryOp::MulScalar, x, out, s, 0.0f);
    return out;
}

// P = softmax(S) along the last dim, on the backend
Tensor softmax_rows(const Tensor& S) {
    Tensor P = Tensor::empty(S.shape(), DType::Float32, S.device());
    backend_for(S.device()).softmax_forward(S, P, /*log=*/false);
    return P;
}

void check_attention_args(const Tensor& q, const Tensor& k, const Tensor& v) {
    check(q.defined() && k.defined() && v.defined() && q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(),
          "attention: q, k, v must have the same rank >= 2");
    check(q.dtype() == DType::Float32 && k.dtype() == DType::Float32 && v.dtype() == DType::Float32,
          "attention: q, k, v must be float32");
    check(q.device() == k.device() && q.device() == v.device(), "attention: q, k, v on different devices");
    check(q.size(-1) == k.size(-1), "attention: q of shape ", q.shape(), " and k of shape ", k.shape(),
          " differ in the feature dim");
    check(k.size(-2) == v.size(-2), "attention: k of shape ", k.shape(), " and v of shape ", v.shape(),
          " differ in sequence length");
    for (int64_t i = 0; i + 2 < q.dim(); ++i)
        check(q.size(i) == k.size(i) && q.size(i) == v.size(i), "attention: q ", q.shape(), ", k ", k.shape(),
              " and v ", v.shape(), " must have the same batch dims");
}

// The fused CUDA kernels take head dims up to this (cuda/attention.cu, kMaxHeadDim).
constexpr int64_t kMaxFusedHeadDim = 512;

enum class AttentionSetting { Default, Fused, Composed };

// TD_ATTENTION, read once (at the first attention of the process): unset or empty is the
// default; anything but fused or composed is an error (a typo must not pass unnoticed).
AttentionSetting attention_setting() {
    static const AttentionSetting setting = [] {
        const char* env = std::getenv("TD_ATTENTION");
        std::string value = env ? env : "";
        if (value.empty()) return AttentionSetting::Default;
        if (value == "fused") return AttentionSetting::Fused;
        if (value == "composed") return AttentionSetting::Composed;
        fail("TD_ATTENTION=", value, ": expected fused or composed (or leave it unset)");
    }();
    return setting;
}

// Whether q, k, v on `device` with head dims d, dv take the fused path (the table at the top).
bool use_fused(Device device, int64_t d, int64_t dv) {
    AttentionSetting setting = attention_setting();
    if (setting == AttentionSetting::Composed) return false;
    if (device == Device::CPU) return setting == AttentionSetting::Fused;
    return d <= kMaxFusedHeadDim && dv <= kMaxFusedHeadDim;
}

// The fused path: O and lse from the backend's attention_forward; the backward calls its
// attention_backward on the saved Q, K, V, O and lse. One recorded op, as the composed path.
Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t B, float scale,
                       const Shape& out_shape) {
    Tensor Q = as_matrices(q, B);  // (B, Lq, d)
    Tensor K = as_matrices(k, B);  // (B, Lk, d)
    Tensor V = as_matrices(v, B);  // (B, Lk, dv)
    Tensor O = Tensor::empty({B, Q.size(1), V.size(2)}, DType::Float32, q.device());
    Tensor lse = Tensor::empty({B, Q.size(1)}, DType::Float32, q.device());  // saved instead of P
    backend_for(q.device()).attention_forward(Q, K, V, scale, O, lse);
    return record("scaled_dot_product_attention", O.view(out_shape), {q, k, v},
                  [q, k, v, Q, K, V, O, lse, scale](const Tensor& dO_in) -> std::vector<Tensor> {
                      Tensor dO = as_matrices(dO_in, Q.size(0));  // (B, Lq, dv)
                      Tensor dQ = Tensor::empty(Q.shape(), DType::Float32, Q.device());
                      Tensor dK = Tensor::empty(K.shape(), DType::Float32, K.device());
                      Tensor dV = Tensor::empty(V.shape(), DType::Float32, V.device());
                      backend_for(Q.device()).attention_backward(Q, K, V, O, lse, dO, scale, dQ, dK, dV);
                      return {q.requires_grad() ? dQ.view(q.shape()) : Tensor(),
                              k.requires_grad() ? dK.view(k.shape()) : Tensor(),
                              v.requires_grad() ? dV.view(v.shape()) : Tensor()};
                  });
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
    check_attention_args(q, k, v);
    int64_t B = numel_of(Shape(q.shape().begin(), q.shape().end() - 2)), d = q.size(-1);
    float scale = 1.0f / std::sqrt((float)d);
    Shape out_shape = q.shape();
    out_shape.back() = v.size(-1);
    if (use_fused(q.device(), d, v.size(-1))) return fused_attention(q, k, v, B, scale, out_shape);

    // The composed path.
    // The scale is folded into Q: (Q / sqrt(d)) K^T is S, at Lq d multiplies instead of Lq Lk.
    Tensor Qs = scaled(as_matrices(q, B), scale);  // (B, Lq, d), Q * scale
    Tensor K = as_matrices(k, B);                  // (B, Lk, d)
    Tensor V = as_matrices(v, B);                  // (B, Lk, dv)
    Tensor P = softmax_rows(bmm(Qs, T(K)));        // S = Q K^T * scale (B, Lq, Lk); P = softmax(S), saved
    Tensor O = bmm(P, V);                          // O = P V (B, Lq, dv)
    return record(
        "scaled_dot_product_attention", O.view(out_shape), {q, k, v},
        [q, k, v, Qs, K, V, P, scale](const Tensor& dO_in) -> std::vector<Tensor> {
            // BEGIN SOLUTION attention-backward: dV, dP, dS (softmax's backward), dQ, dK, on the backend
            // STUB: (void)dO_in;  // unused until you write the backward
            // STUB: fail("scaled_dot_product_attention backward: not implemented yet (assignment attention-backward)");
            Tensor dO = as_matrices(dO_in, P.size(0));  // (B, Lq, dv)
            // dV = P^T dO: (B, Lk, Lq) x (B, Lq, dv) -> (B, Lk, dv)
            Tensor dV = v.requires_grad() ? bmm(T(P), dO).view(v.shape()) : Tensor();
            Tensor dP = bmm(dO, T(V));  // dP = dO V^T: (B, Lq, dv) x (B, dv, Lk) -> (B, Lq, Lk)
            // dS = P * (dP - rowsum(dP * P)): softmax's backward, from its saved output P (B, Lq, Lk)
            Tensor dS = Tensor::empty(P.shape(), DType::Float32, P.device());
            backend_for(P.device()).softmax_backward(P, dP, dS, /*log=*/false);
            // dQ = dS K * scale: (B, Lq, Lk) x (B, Lk, d) -> (B, Lq, d)
            Tensor dQ = q.requires_grad() ? scaled(bmm(dS, K), scale).view(q.shape()) : Tensor();
            // dK = dS^T Q * scale = dS^T Qs: (B, Lk, Lq) x (B, Lq, d) -> (B, Lk, d)
            Tensor dK = k.requires_grad() ? bmm(T(dS), Qs).view(k.shape()) : Tensor();
            return {dQ, dK, dV};
            // END SOLUTION attention-backward
        });
}

}  // namespace td
