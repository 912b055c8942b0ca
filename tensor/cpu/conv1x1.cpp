// tensor/cpu/conv1x1.cpp: the fast path for the 1x1 convolution (stride 1, no padding, one
// group): the ResBlocks' skip connections, where a block changes the channel count.
//
// conv.cpp's reference computes a 1x1 convolution as one Eigen GEMM per image, on the input
// as it is (no im2col): y_n (K, P) = W (K, C) @ x_n (C, P), P = H * W. Read it first. The
// products are small (P = 49, 196 or 784 positions) and Eigen packs both operands into
// panels of its own before every one of them. This file computes the same sums with
// register tiles in the style of conv3x3.cpp, with no per-image packing:
//
// 1. Forward, from 64 input channels on: channel tiles. PB = 14 positions x KV vectors of
//    16 output channels live in registers while the C input channels stream past:
//        acc[i][j] += splat(x[c][q0 + i]) * w[c][k0 + 16 j .. + 15]
//    KV weight loads and 14 broadcasts for 14 * KV multiply-adds per channel. The whole
//    plane is one run of P positions (a 1x1 kernel has no rows to respect), so the tiles
//    run across row ends and 7x7 and 14x14 planes waste nothing; the last, shorter tile
//    reads its positions from a zero-filled copy. The tile is turned round in registers
//    into (channel, position) order, as conv3x3.cpp's row_tile does.
// 2. Forward, below 64 input channels: lane tiles, the other way round. 32 positions in
//    the lanes x 8 output channels broadcast, so the accumulators already are rows of the
//    output. A channel tile's transposes cost the same whatever C is, and with 16 input
//    channels they take a third as long as its multiply-adds; here there are none.
// 3. dx (C, P) = W^T (C, K) @ dy (K, P): the same kernels, with the weights packed the other
//    way round (the input channels of x are its outputs) and K in the place of C.
// 4. dW[k, c] = sum over n, q of dy[n, k, q] * x[n, c, q]. One side goes in the vector lanes
//    (transposed to (P, 16-channel blocks) once per image), the other is broadcast:
//        acc[s][j] += splat(B[s][q]) * AT[q][l0 + 16 j .. + 15]
//    over q. The side with more channels takes the lanes, so that a 16-channel side (the
//    UNet's 48 -> 16 skip) is broadcast and never leaves most of a tile idle.
// 5. db in the same pass over dy.
// The kernels read each input plane at the next tile's positions ahead of time
// (__builtin_prefetch): a tile touches one short run in each of C planes, too many
// separate streams for the hardware prefetcher to follow at 28x28, where this halved the
// forward's time.
//
// Parallelism and the order of every sum are conv3x3.cpp's: one image per work item forward;
// dW and db summed over fixed pieces of the batch added in order, so the results are the
// same bits for any thread count.
#include <algorithm>
#include <memory>
#include <vector>

#include "tensor/cpu/conv_fast.h"
#include "tensor/cpu/v16.h"

namespace td {

using namespace v16ops;

namespace {

constexpr int64_t kTile = 14;            // positions per channel tile (as conv3x3.cpp's row tiles)
constexpr int64_t kNV = 2, kKB = 8;      // a lane tile: vectors of 16 positions x output channels
constexpr int64_t kLaneTilesBelow = 64;  // input channels below which the lane tiles are faster (measured)
constexpr int64_t kAhead = 64;           // how far ahead in a plane to prefetch, in floats (measured: 32-128)

int64_t round16(int64_t n) { return (n + kVecLanes - 1) / kVecLanes * kVecLanes; }

// packed (ins, Ob): packed[i][o] = w_out_in(o, i), zero past outs, Ob = outs rounded up to
// `block` (16 for the channel tiles, kKB for the lane tiles). Forward: outs = K,
// w_out_in(k, c) = w[k, c]; dx: outs = C, w_out_in(c, k) = w[k, c].
std::vector<float> pack_weights(const float* w, int64_t K, int64_t C, bool for_dx, int64_t block) {
    const int64_t outs = for_dx ? C : K, ins = for_dx ? K : C, Ob = (outs + block - 1) / block * block;
    std::vector<float> packed(ins * Ob, 0.0f);
    for (int64_t k = 0; k < K; ++k)
        for (int64_t c = 0; c < C; ++c) {
            if (for_dx) packed[k * Ob + c] = w[k * C + c];
            else packed[c * Ob + k] = w[k * C + c];
        }
    return packed;
}

// A channel tile: positions q0 .. q0 + 13 of the ins planes of `in` (plane stride `stride`) times
// the packed weights of output channels k0 .. k0 + 16 KV - 1, into dst (outs, P) at q0,
// `n` positions kept (14, or fewer for the last tile), + bias.
template <int64_t KV>
void channel_tile(const float* in, int64_t stride, int64_t ins, const float* w, int64_t O16, int64_t k0, int64_t outs,
                  const float* bias, int64_t P, int64_t q0, int64_t n, float* dst) {
    v16 acc[kTile][KV];  // zeroed one register at a time (`= {}` compiles to a memset of the stack copy)
    for (int64_t i = 0; i < kTile; ++i)
        for (int64_t j = 0; j < KV; ++j) acc[i][j] = v16{};
    for (int64_t c = 0; c < ins; ++c) {
        v16 wv[KV];
        for (int64_t j = 0; j < KV; ++j) wv[j] = load16(w + c * O16 + k0 + j * kVecLanes);
        const float* xr = in + c * stride;
        __builtin_prefetch(xr + kAhead);
        for (int64_t i = 0; i < kTile; ++i) {
            const v16 xv = splat(xr[i]);
            for (int64_t j = 0; j < KV; ++j) acc[i][j] += xv * wv[j];
        }
    }
    for (int64_t j = 0; j < KV; ++j) {
        v16 r[16];  // row i: position i's 16 channels (rows past the tile: zero, unused)
        for (int64_t i = 0; i < 16; ++i) r[i] = i < kTile ? acc[i][j] : v16{};
        transpose16(r);  // row kk: channel kk's positions
        const int64_t kb = k0 + j * kVecLanes;
        for (int64_t kk = 0; kk < kVecLanes; ++kk) {
            if (kb + kk >= outs) continue;
            const v16 v = r[kk] + splat(bias ? bias[kb + kk] : 0.0f);
            float* d = dst + (kb + kk) * P + q0;
            if (n == kTile) store_run<kTile>(d, v);
            else store_first(d, v, n);
        }
    }
}

// Where a tile of `width` positions from q0 on reads its input: the planes themselves
// (stride P), or for the last, shorter tile a zero-filled copy of its positions (ins, width)
// in `tail`, so that no tile reads past a plane.
const float* tile_source(const float* in, int64_t ins, int64_t P, int64_t q0, int64_t width, float* tail,
                         int64_t& stride) {
    stride = P;
    if (q0 + width <= P) return in + q0;
    for (int64_t c = 0; c < ins; ++c) {
        std::fill(tail + c * width, tail + (c + 1) * width, 0.0f);
        std::copy(in + c * P + q0, in + c * P + P, tail + c * width);
    }
    stride = width;
    return tail;
}

// dst (outs, P) = W_packed^T @ in (ins, P) (+ bias) for one image, by channel tiles.
// Positions outer, channel blocks inner: a tile's 14 positions of every input channel stay
// in L1 while all the output channels are computed from them. tail: an (ins, 14) buffer.
void conv_image_channel_tiles(const float* in, int64_t ins, const float* w, int64_t outs, const float* bias, int64_t P,
                              float* tail, float* dst) {
    const int64_t O16 = round16(outs);
    for (int64_t q0 = 0; q0 < P; q0 += kTile) {
        const int64_t n = std::min(kTile, P - q0);
        int64_t stride;
        const float* src = tile_source(in, ins, P, q0, kTile, tail, stride);
        for (int64_t k0 = 0; k0 < O16;) {
            if (O16 - k0 >= 2 * kVecLanes) {
                channel_tile<2>(src, stride, ins, w, O16, k0, outs, bias, P, q0, n, dst);
                k0 += 2 * kVecLanes;
            } else {
                channel_tile<1>(src, stride, ins, w, O16, k0, outs, bias, P, q0, n, dst);
                k0 += kVecLanes;
            }
        }
    }
}

// A lane tile, for few input channels: positions in the lanes, kKB output channels
// broadcast. acc[k][j] += splat(w[c][k0 + k]) * x[c][q0 + 16 j .. + 15]: per input channel
// kNV loads and kKB broadcasts for kKB * kNV multiply-adds, and the accumulators are already
// rows of the output: nothing to turn round. w: packed (ins, O8), O8 = outs rounded up to
// kKB.
void lane_tile(const float* in, int64_t stride, int64_t ins, const float* w, int64_t O8, int64_t k0, int64_t outs,
               const float* bias, int64_t P, int64_t q0, int64_t n, float* dst) {
    v16 acc[kKB][kNV];
    for (int64_t k = 0; k < kKB; ++k)
        for (int64_t j = 0; j < kNV; ++j) acc[k][j] = v16{};
    for (int64_t c = 0; c < ins; ++c) {
        v16 xv[kNV];
        for (int64_t j = 0; j < kNV; ++j) xv[j] = load16(in + c * stride + j * kVecLanes);
        __builtin_prefetch(in + c * stride + kAhead);
        __builtin_prefetch(in + c * stride + kAhead + kVecLanes);
        for (int64_t k = 0; k < kKB; ++k) {
            const v16 wk = splat(w[c * O8 + k0 + k]);
            for (int64_t j = 0; j < kNV; ++j) acc[k][j] += wk * xv[j];
        }
    }
    // (loops of fixed length, so that every acc index is a constant and acc stays in registers)
    for (int64_t k = 0; k < kKB; ++k) {
        if (k0 + k >= outs) continue;
        const v16 b = splat(bias ? bias[k0 + k] : 0.0f);
        float* d = dst + (k0 + k) * P + q0;
        for (int64_t j = 0; j < kNV; ++j) {
            const int64_t m = n - j * kVecLanes;  // positions of this vector to keep
            if (m >= kVecLanes) {
                store16(d + j * kVecLanes, acc[k][j] + b);
            } else if (m > 0) {
                store_first(d + j * kVecLanes, acc[k][j] + b, m);
            }
        }
    }
}

// The same by lane tiles: 32 positions at a time, 8 output channels per tile. tail: an
// (ins, 32) buffer.
void conv_image_lane_tiles(const float* in, int64_t ins, const float* w, int64_t outs, const float* bias, int64_t P,
                           float* tail, float* dst) {
    const int64_t O8 = (outs + kKB - 1) / kKB * kKB, step = kNV * kVecLanes;
    for (int64_t q0 = 0; q0 < P; q0 += step) {
        const int64_t n = std::min(step, P - q0);
        int64_t stride;
        const float* src = tile_source(in, ins, P, q0, step, tail, stride);
        for (int64_t k0 = 0; k0 < O8; k0 += kKB) lane_tile(src, stride, ins, w, O8, k0, outs, bias, P, q0, n, dst);
    }
}

bool use_lane_tiles(int64_t ins) { return ins < kLaneTilesBelow; }

// dW of one image, stored (first image of a piece) or added onto partial (S, L16):
//     partial[s][l] (+)= sum over q of b[s][q] * aT[q][l]
// where a is the lanes side and b the broadcast side. The register tile: KV vectors of
// lanes x SB broadcast channels; per position KV loads and SB broadcasts for SB * KV
// multiply-adds (2 x 8: 10 loads for 16). Past the last broadcast channel: a zero plane.
template <int64_t KV, int64_t SB>
void dw_tile(const float* aT, int64_t L16, int64_t l0, const float* const* bs, int64_t sn, int64_t P, bool first,
             float* partial_s0) {
    v16 acc[SB][KV];
    for (int64_t s = 0; s < SB; ++s)
        for (int64_t j = 0; j < KV; ++j) acc[s][j] = v16{};
    for (int64_t q = 0; q < P; ++q) {
        v16 av[KV];
        for (int64_t j = 0; j < KV; ++j) av[j] = load16(aT + q * L16 + l0 + j * kVecLanes);
        for (int64_t s = 0; s < SB; ++s) {
            const v16 bv = splat(bs[s][q]);
            for (int64_t j = 0; j < KV; ++j) acc[s][j] += bv * av[j];
        }
    }
    for (int64_t s = 0; s < sn; ++s)
        for (int64_t j = 0; j < KV; ++j) {
            float* d = partial_s0 + s * L16 + l0 + j * kVecLanes;
            store16(d, first ? acc[s][j] : load16(d) + acc[s][j]);
        }
}

void dw_image(const float* aT, int64_t L16, const float* b, int64_t S, int64_t P, const float* zero_plane, bool first,
              float* partial) {
    for (int64_t l0 = 0; l0 < L16;) {
        const bool two = L16 - l0 >= 2 * kVecLanes;
        const int64_t SB = two ? 8 : 16;  // 16 accumulators either way (measured: 8 x 2 beats 12 x 2)
        for (int64_t s0 = 0; s0 < S; s0 += SB) {
            const int64_t sn = std::min(SB, S - s0);
            const float* bs[16];
            for (int64_t s = 0; s < SB; ++s) bs[s] = s < sn ? b + (s0 + s) * P : zero_plane;
            if (two) dw_tile<2, 8>(aT, L16, l0, bs, sn, P, first, partial + s0 * L16);
            else dw_tile<1, 16>(aT, L16, l0, bs, sn, P, first, partial + s0 * L16);
        }
        l0 += two ? 2 * kVecLanes : kVecLanes;
    }
}

}  // namespace

bool conv1x1_fast_path_applies(const Conv2dShape& g) {
    return conv_fast_paths_enabled() && g.R == 1 && g.S == 1 && g.stride == 1 && g.pad == 0 && g.groups == 1 &&
           g.N > 0 && g.C > 0 && g.K > 0;
}

void conv1x1_forward(const float* x, const float* w, const float* bias, float* y, const Conv2dShape& g) {
    const int64_t P = g.H * g.W;
    const bool lane_tiles = use_lane_tiles(g.C);
    const std::vector<float> packed = pack_weights(w, g.K, g.C, /*for_dx=*/false, lane_tiles ? kKB : kVecLanes);
#pragma omp parallel
    {
        float* tail = conv_thread_buffer(0, g.C * kNV * kVecLanes);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < g.N; ++n)
            (lane_tiles ? conv_image_lane_tiles : conv_image_channel_tiles)(x + n * g.C * P, g.C, packed.data(), g.K,
                                                                            bias, P, tail, y + n * g.K * P);
    }
}

void conv1x1_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                      const Conv2dShape& g, int64_t pieces) {
    const int64_t N = g.N, C = g.C, K = g.K, P = g.H * g.W;
    const bool lane_tiles = use_lane_tiles(K);
    const std::vector<float> packed =
        dx ? pack_weights(w, K, C, /*for_dx=*/true, lane_tiles ? kKB : kVecLanes) : std::vector<float>();
    // dW's lanes side: the one with more channels (see the header, point 4).
    const bool k_in_lanes = K >= C;
    const int64_t L = k_in_lanes ? K : C, S = k_in_lanes ? C : K, L16 = round16(L);
    // (pieces, S, L16), uninitialised: each piece's first image stores, the others add
    std::unique_ptr<float[]> partial(dw ? new float[pieces * S * L16] : nullptr);
    std::vector<double> db_partial(db ? pieces * K : 0, 0.0);  // (pieces, K)
    const std::vector<float> zero_plane(P, 0.0f);
#pragma omp parallel
    {
        float* tail = dx ? conv_thread_buffer(0, K * kNV * kVecLanes) : nullptr;
        float* aT = dw ? conv_thread_buffer(1, P * L16) : nullptr;
#pragma omp for schedule(static)
        for (int64_t piece = 0; piece < pieces; ++piece) {
            const int64_t n0 = piece * N / pieces, n1 = (piece + 1) * N / pieces;
            for (int64_t n = n0; n < n1; ++n) {
                const float* dyn = dy + n * K * P;
                if (db) add_bias_sums(dyn, K, P, db_partial.data() + piece * K);
                if (dw) {
                    const float* xn = x + n * C * P;
                    transpose_planes(k_in_lanes ? dyn : xn, L, L16, P, aT);
                    dw_image(aT, L16, k_in_lanes ? xn : dyn, S, P, zero_plane.data(), n == n0,
                             partial.get() + piece * S * L16);
                }
                if (dx)
                    (lane_tiles ? conv_image_lane_tiles : conv_image_channel_tiles)(dyn, K, packed.data(), C, nullptr,
                                                                                    P, tail, dx + n * C * P);
            }
        }
    }
    // dw[k, c]: partial[s][l] with (s, l) = (c, k) or (k, c)
    if (dw) sum_weight_pieces(partial.get(), pieces, S, L, L16, k_in_lanes ? C : 1, k_in_lanes ? 1 : C, dw);
    if (db) sum_bias_pieces(db_partial.data(), pieces, K, db);
}

}  // namespace td
