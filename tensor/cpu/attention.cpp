// tensor/cpu/attention.cpp: fused scaled dot-product attention, flash-attention style: the
// readable reference of cuda/attention.cu, loop for loop (tensor/backend.h has the contract).
//
// q (B, Lq, d), k (B, Lk, d), v (B, Lk, dv), all contiguous. For batch b and query row i:
//   S_ij = scale q_i . k_j,   P_ij = exp(S_ij) / sum_j' exp(S_ij'),   out_i = sum_j P_ij v_j
// The composed op (tensor/ops/attention.cpp) stores the whole (Lq, Lk) matrix P. Here each
// query row walks over the keys once, in tiles of kKeyTile, keeping only three things
// (the online softmax, Milakov & Gimelshein 2018; FlashAttention, Dao et al. 2022, Alg. 1):
//   m  the largest score seen so far            (subtracted before exp, so exp stays finite)
//   l  sum_j exp(S_ij - m) over the keys seen
//   o  sum_j exp(S_ij - m) v_j, a vector of dv  (the output, not yet divided by l)
// When a tile raises the max from m to m', every term so far was taken relative to m, and
// exp(S - m) exp(m - m') = exp(S - m'): l and o are rescaled by alpha = exp(m - m') once
// per tile, then the tile's own terms are added. After the last tile:
//   out_i = o / l,   lse_i = m + log l   (the log-sum-exp of row i, saved for the backward)
//
// Backward (FlashAttention-2, Dao 2023, Alg. 2), from dO (B, Lq, dv). P is never stored:
// P_ij = exp(S_ij - lse_i) rebuilds any element of it from one dot product and lse_i.
// BEGIN HIDE attention-backward
// STUB: // (the backward's formulas: derived in the assignment attention-backward)
//   D_i   = sum_c dO_ic O_ic          (= sum_j P_ij dP_ij: softmax's backward needs it per row)
//   dP_ij = dO_i . v_j
//   dS_ij = P_ij (dP_ij - D_i)        (softmax's backward)
//   dQ_i  = scale sum_j dS_ij k_j     pass 1: one query row per iteration
//   dK_j  = scale sum_i dS_ij q_i     pass 2: one key row per iteration
//   dV_j  = sum_i P_ij dO_i           (pass 2 as well)
// END HIDE attention-backward
// Each pass writes only its own rows, so the rows run in parallel with no atomics and the
// result is the same for any thread count. P and dS are recomputed in both passes: twice
// the exps, in exchange for never holding an (Lq, Lk) matrix.
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/error.h"

namespace td {

namespace {

// Keys per tile: the CUDA kernel gives one key of a tile to each of a warp's 32 lanes.
constexpr int64_t kKeyTile = 32;

// Rows below this much work run on one thread (the OpenMP start-up would cost more).
constexpr int64_t kParallelWork = 32768;

// exp(a - b) for the online rescaling, where b >= a. A part that has seen nothing has
// a = -inf and must contribute nothing: exp(-inf - (-inf)) would be NaN, so that is 0
// by hand (as in cuda/softmax.cu).
float rescale(float a, float b) { return a == -INFINITY ? 0.0f : std::exp(a - b); }

float dot(const float* a, const float* b, int64_t n) {
    float s = 0.0f;
    for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
    return s;
}

}  // namespace

void CpuBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale, const Tensor& out,
                                   const Tensor& lse) {
    int64_t B = q.size(0), Lq = q.size(1), d = q.size(2), Lk = k.size(1), dv = v.size(2);
    const float* qp = q.data_f32();
    const float* kp = k.data_f32();
    const float* vp = v.data_f32();
    float* op = out.data_f32();
    float* lp = lse.data_f32();
#pragma omp parallel if (B * Lq * Lk * (d + dv) > kParallelWork)
    {
        std::vector<float> s(kKeyTile);  // this thread's scores of one tile
#pragma omp for
        for (int64_t r = 0; r < B * Lq; ++r) {  // r = b Lq + i: query row i of batch b
            int64_t b = r / Lq;
            const float* qi = qp + r * d;
            const float* kb = kp + b * Lk * d;
            const float* vb = vp + b * Lk * dv;
            float* oi = op + r * dv;  // o is accumulated in place, in the output row
            std::fill(oi, oi + dv, 0.0f);
            float m = -INFINITY, l = 0.0f;  // nothing seen yet
            for (int64_t j0 = 0; j0 < Lk; j0 += kKeyTile) {
                int64_t nk = std::min(kKeyTile, Lk - j0);
                float tile_max = -INFINITY;
                for (int64_t j = 0; j < nk; ++j) {
                    s[j] = scale * dot(qi, kb + (j0 + j) * d, d);  // S_ij = scale q_i . k_j
                    tile_max = std::max(tile_max, s[j]);
                }
                float m_new = std::max(m, tile_max);              // m' = max(m, max_j S_ij)
                float alpha = rescale(m, m_new);                  // alpha = exp(m - m')
                l *= alpha;                                       // l = alpha l ...
                for (int64_t c = 0; c < dv; ++c) oi[c] *= alpha;  // o = alpha o ...
                for (int64_t j = 0; j < nk; ++j) {
                    float p = rescale(s[j], m_new);  // p_j = exp(S_ij - m')
                    l += p;                          // ... + sum_j p_j
                    const float* vj = vb + (j0 + j) * dv;
                    for (int64_t c = 0; c < dv; ++c) oi[c] += p * vj[c];  // ... + sum_j p_j v_j
                }
                m = m_new;
            }
            // out_i = o / l (no keys at all: l = 0 and the output is 0, as the composed op gives)
            float inv = l > 0.0f ? 1.0f / l : 0.0f;
            for (int64_t c = 0; c < dv; ++c) oi[c] *= inv;
            lp[r] = m + std::log(l);  // lse_i = m + log l
        }
    }
}

void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, const Tensor& dout, float scale, const Tensor& dq,
                                    const Tensor& dk, const Tensor& dv_out) {
    // BEGIN HIDE attention-backward
    // STUB: (void)q, (void)k, (void)v, (void)out, (void)lse, (void)dout, (void)scale, (void)dq, (void)dk, (void)dv_out;
    // STUB: fail("attention_backward (fused): left out of this copy (the same formula as the assignment attention-backward)");
    int64_t B = q.size(0), Lq = q.size(1), d = q.size(2), Lk = k.size(1), dv = v.size(2);
    const float* qp = q.data_f32();
    const float* kp = k.data_f32();
    const float* vp = v.data_f32();
    const float* op = out.data_f32();
    const float* lp = lse.data_f32();
    const float* dop = dout.data_f32();
    float* dqp = dq.data_f32();
    float* dkp = dk.data_f32();
    float* dvp = dv_out.data_f32();
    bool parallel = B * Lq * Lk * (d + dv) > kParallelWork;

    // Pass 0: D_i = sum_c dO_ic O_ic, one number per query row (B, Lq).
    std::vector<float> D(B * Lq);
#pragma omp parallel for if (parallel)
    for (int64_t r = 0; r < B * Lq; ++r) D[r] = dot(dop + r * dv, op + r * dv, dv);

        // Pass 1: dQ_i, one query row per iteration, a loop over all keys of its batch.
#pragma omp parallel for if (parallel)
    for (int64_t r = 0; r < B * Lq; ++r) {  // r = b Lq + i
        int64_t b = r / Lq;
        const float* qi = qp + r * d;
        const float* doi = dop + r * dv;
        float* dqi = dqp + r * d;
        std::fill(dqi, dqi + d, 0.0f);
        for (int64_t j = 0; j < Lk; ++j) {
            const float* kj = kp + (b * Lk + j) * d;
            float p = std::exp(scale * dot(qi, kj, d) - lp[r]);    // P_ij = exp(S_ij - lse_i)
            float dp = dot(doi, vp + (b * Lk + j) * dv, dv);       // dP_ij = dO_i . v_j
            float ds = p * (dp - D[r]);                            // dS_ij = P_ij (dP_ij - D_i)
            for (int64_t c = 0; c < d; ++c) dqi[c] += ds * kj[c];  // dQ_i += dS_ij k_j
        }
        for (int64_t c = 0; c < d; ++c) dqi[c] *= scale;  // dQ_i = scale sum_j dS_ij k_j
    }

    // Pass 2: dK_j and dV_j, one key row per iteration, a loop over all queries of its batch.
#pragma omp parallel for if (parallel)
    for (int64_t r = 0; r < B * Lk; ++r) {  // r = b Lk + j
        int64_t b = r / Lk;
        const float* kj = kp + r * d;
        const float* vj = vp + r * dv;
        float* dkj = dkp + r * d;
        float* dvj = dvp + r * dv;
        std::fill(dkj, dkj + d, 0.0f);
        std::fill(dvj, dvj + dv, 0.0f);
        for (int64_t i = 0; i < Lq; ++i) {
            int64_t qi_row = b * Lq + i;
            const float* qi = qp + qi_row * d;
            const float* doi = dop + qi_row * dv;
            float p = std::exp(scale * dot(qi, kj, d) - lp[qi_row]);  // P_ij = exp(S_ij - lse_i)
            float dp = dot(doi, vj, dv);                              // dP_ij = dO_i . v_j
            float ds = p * (dp - D[qi_row]);                          // dS_ij = P_ij (dP_ij - D_i)
            for (int64_t c = 0; c < dv; ++c) dvj[c] += p * doi[c];    // dV_j += P_ij dO_i
            for (int64_t c = 0; c < d; ++c) dkj[c] += ds * qi[c];     // dK_j += dS_ij q_i
        }
        for (int64_t c = 0; c < d; ++c) dkj[c] *= scale;  // dK_j = scale sum_i dS_ij q_i
    }
    // END HIDE attention-backward
}

}  // namespace td
