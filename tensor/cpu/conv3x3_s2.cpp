// tensor/cpu/conv3x3_s2.cpp: the fast path for the UNet's downsampling convolution, 3x3 with
// stride 2 and padding 1 (28x28 -> 14x14, 14x14 -> 7x7), forward and backward, without im2col.
//
// Read conv3x3.cpp first: this file keeps its padded layout and its row tiles (output
// channels in the vector lanes, a row of output positions in registers) and changes what
// stride 2 changes.
//
// 1. Forward. The input is padded as in conv3x3.cpp (row stride Wp = W + 1, pixel (h, w) at
//    (h + 1) * Wp + w + 1, one zero column shared by neighbouring rows), and output (oh, ow)
//    reads tap (r, s) at 2 * oh * Wp + 2 * ow + r * Wp + s. A row tile broadcasts one input
//    value per (position, tap) anyway, so reading every second value costs nothing: the tile
//    is conv3x3.cpp's row_tile with x[2 * i] in place of x[i]. (The stride-1 micro-kernel,
//    16 positions per vector load, would need a gather here.) An odd input (7 -> 4) reads one
//    column past the last pixel, which is the next stored row's zero column 0, and one row
//    below the last, which the padded plane's zero bottom row gives.
// 2. dx. Each input pixel collects the terms of the outputs whose taps touched it. In padded
//    coordinates, output row oh touches rows 2 oh, 2 oh + 1, 2 oh + 2 through taps r = 0, 1,
//    2: an even input row ih = 2m (padded row 2m + 1) is seen only by tap r = 1 of output row
//    m, an odd one ih = 2m + 1 by r = 0 of output row m + 1 and r = 2 of row m. The columns
//    split the same way, so the four parities of (ih, iw) take 1, 2, 2 and 4 taps: 9 per
//    2 x 2 block of dx, as many multiply-adds as the forward. A dx row tile (dx_tile) holds
//    one row of dx, even and odd columns side by side, and reads dy one column per block, so
//    the broadcasts walk dy at stride 1. The alternative, stuffing zeros between dy's values
//    and running a stride-1 convolution, would spend three quarters of its multiply-adds on
//    the zeros; im2col's col2im scatters every term through memory.
// 3. dW. dW[k, c, r, s] = sum over n, oh, ow of dy[n, k, oh, ow] * x[n, c, 2 oh + r - 1,
//    2 ow + s - 1]: conv3x3.cpp's conv3x3_dw_image, which takes the stride, with x unpadded
//    and the taps outside the plane skipped, 16 output channels k per vector.
// 4. db in the same pass over dy as dx and dW, while each image's dy is in cache.
//
// Parallelism and the order of every sum are those of conv3x3.cpp: one image per work item
// forward; dW and db summed over fixed pieces of the batch added in order, so the results
// are the same bits for any thread count.
#include <algorithm>
#include <memory>
#include <vector>

#include "tensor/cpu/conv_fast.h"
#include "tensor/cpu/v16.h"

namespace td {

using namespace v16ops;

namespace {

constexpr int64_t kMaxTile = 14;  // the longest row tile, in positions (forward) or blocks

// The geometry of one image: input planes padded as in conv3x3.cpp, dy planes padded for dx.
struct Geometry {
    int64_t H, W, OH, OW;
    int64_t Wp;  // padded input row stride: W + 1
    int64_t PS;  // floats per padded input plane
    int64_t Wq;  // padded dy row stride: OW + 1 (a zero column after each row)
    int64_t DS;  // floats per padded dy plane
    int64_t PB;  // forward row tile: 14 or 7 output positions
};

Geometry geometry(const Conv2dShape& g) {
    Geometry p{g.H, g.W, g.OH, g.OW, g.W + 1, 0, g.OW + 1, 0, g.OW % 14 == 0 ? 14 : 7};
    // H + 2 rows (the zero rows above and below), then room for the reads of a last row
    // tile that runs past the row's end (those positions are computed and not stored).
    p.PS = ((g.H + 2) * p.Wp + 2 * kMaxTile + kVecLanes) / kVecLanes * kVecLanes;
    // OH rows and a zero row below; dx reads up to one block past a tile of 7.
    p.DS = ((g.OH + 1) * p.Wq + kMaxTile + kVecLanes) / kVecLanes * kVecLanes;
    return p;
}

// planes (count, H, W) -> padded (count, PS): pixel (h, w) at (h + 1) * Wp + (w + 1), zeros
// elsewhere (conv3x3.cpp's pad_planes, with this file's plane size).
void pad_input(const float* src, int64_t count, const Geometry& p, float* dst) {
    for (int64_t i = 0; i < count; ++i) {
        float* d = dst + i * p.PS;
        const float* s = src + i * p.H * p.W;
        std::fill(d, d + p.Wp + 1, 0.0f);
        for (int64_t h = 0; h < p.H; ++h) {
            copy_row(s + h * p.W, p.W, d + (h + 1) * p.Wp + 1);
            d[(h + 2) * p.Wp] = 0.0f;
        }
        std::fill(d + (p.H + 1) * p.Wp + 1, d + p.PS, 0.0f);
    }
}

// dy planes (count, OH, OW) -> (count, DS): dy[m, n] at m * Wq + n, zero in column OW of
// every row and in row OH (the dy "past the edge" that dx's odd rows and columns read).
void pad_dy(const float* src, int64_t count, const Geometry& p, float* dst) {
    for (int64_t i = 0; i < count; ++i) {
        float* d = dst + i * p.DS;
        const float* s = src + i * p.OH * p.OW;
        for (int64_t m = 0; m < p.OH; ++m) {
            copy_row(s + m * p.OW, p.OW, d + m * p.Wq);
            d[m * p.Wq + p.OW] = 0.0f;
        }
        std::fill(d + p.OH * p.Wq, d + p.DS, 0.0f);
    }
}

// packed[i][tap][o] = w_out_in(o, i, tap), o rounded up to O16 with zeros. Forward: outputs
// are the K output channels, inputs the C input channels, w_out_in(k, c, tap) = w[k, c, tap].
// dx: outputs are x's channels and inputs dy's, w_out_in(c, k, tap) = w[k, c, tap] (dx_tile
// names each tap, so unlike conv3x3.cpp's dx the kernel is not flipped).
std::vector<float> pack_weights(const float* w, int64_t K, int64_t C, bool for_dx) {
    const int64_t outs = for_dx ? C : K, ins = for_dx ? K : C;
    const int64_t O16 = (outs + kVecLanes - 1) / kVecLanes * kVecLanes;
    std::vector<float> packed(ins * 9 * O16, 0.0f);
    for (int64_t k = 0; k < K; ++k)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t tap = 0; tap < 9; ++tap) {
                const int64_t o = for_dx ? c : k, i = for_dx ? k : c;
                packed[(i * 9 + tap) * O16 + o] = w[(k * C + c) * 9 + tap];
            }
    return packed;
}

// The first n lanes of v to d: a whole tile as two overlapping halves (store_run), the
// ragged last tile of a row one float at a time.
template <int64_t PB>
void store_lanes(float* d, v16 v, int64_t n) {
    if (n == PB) return store_run<PB>(d, v);
    for (int64_t i = 0; i < n; ++i) d[i] = v[i];
}

// The tile of acc[i][j] (position i, channels o0 + 16 j ..) turned round into the output:
// per block of 16 channels one register transpose, then each channel's n positions as one
// run, + bias. dst: the tile's first position in channel o0's plane; HW: floats per plane.
template <int64_t PB, int64_t KV>
void store_tile(const v16 (&acc)[PB][KV], int64_t o0, int64_t outs, const float* bias, int64_t n, int64_t HW,
                float* dst) {
    for (int64_t j = 0; j < KV; ++j) {
        v16 r[16];  // row i: position i's 16 channels (rows past PB: zero, unused)
        for (int64_t i = 0; i < 16; ++i) r[i] = i < PB ? acc[i][j] : v16{};
        transpose16(r);
        const int64_t ob = o0 + j * kVecLanes;
        for (int64_t oo = 0; oo < kVecLanes && ob + oo < outs; ++oo)
            store_lanes<PB>(dst + (j * kVecLanes + oo) * HW, r[oo] + splat(bias ? bias[ob + oo] : 0.0f), n);
    }
}

// Forward: PB output positions of one row x KV vectors of 16 output channels,
//     acc[i][j] += splat(xpad[c][base + 2 i + offset(tap)]) * w[c][tap][k0 + 16 j .. + 15]
// per (channel, tap): KV weight loads and PB broadcasts for PB * KV multiply-adds.
// base = 2 oh Wp + 2 ow0: where tap (0, 0) of the tile's first output sits.
template <int64_t PB, int64_t KV>
void fwd_tile(const float* xpad, int64_t C, const float* w, int64_t K16, int64_t k0, const Geometry& p,
              const int64_t* off, int64_t base, int64_t K, const float* bias, int64_t n, float* dst) {
    v16 acc[PB][KV] = {};
    for (int64_t c = 0; c < C; ++c) {
        const float* plane = xpad + c * p.PS + base;
        const float* wc = w + c * 9 * K16 + k0;
        for (int64_t tap = 0; tap < 9; ++tap) {
            v16 wv[KV];
            for (int64_t j = 0; j < KV; ++j) wv[j] = load16(wc + tap * K16 + j * kVecLanes);
            const float* xr = plane + off[tap];
            for (int64_t i = 0; i < PB; ++i) {
                const v16 xv = splat(xr[2 * i]);
                for (int64_t j = 0; j < KV; ++j) acc[i][j] += xv * wv[j];
            }
        }
    }
    store_tile<PB, KV>(acc, k0, K, bias, n, p.OH * p.OW, dst);
}

template <int64_t PB>
void fwd_image(const float* xpad, int64_t C, const float* w, int64_t K, const float* bias, const Geometry& p,
               float* y) {
    int64_t off[9];
    for (int64_t tap = 0; tap < 9; ++tap) off[tap] = (tap / 3) * p.Wp + tap % 3;
    const int64_t K16 = (K + kVecLanes - 1) / kVecLanes * kVecLanes, OHW = p.OH * p.OW;
    for (int64_t k0 = 0; k0 < K16;) {  // 32 channels at a time (their weights stay in L1), then 16
        const int64_t kv = K16 - k0 >= 2 * kVecLanes ? 2 : 1;
        for (int64_t oh = 0; oh < p.OH; ++oh)
            for (int64_t ow = 0; ow < p.OW; ow += PB) {
                const int64_t n = std::min(PB, p.OW - ow), base = 2 * oh * p.Wp + 2 * ow;
                float* d = y + k0 * OHW + oh * p.OW + ow;
                if (kv == 2) fwd_tile<PB, 2>(xpad, C, w, K16, k0, p, off, base, K, bias, n, d);
                else fwd_tile<PB, 1>(xpad, C, w, K16, k0, p, off, base, K, bias, n, d);
            }
        k0 += kv * kVecLanes;
    }
}

// One tap of dx_tile: acc[2 j + parity] += splat(src[j]) * w[tap] for the tile's PB blocks j.
template <int64_t PB, int64_t KV>
inline void dx_tap(v16 (&acc)[2 * PB][KV], const float* wtap, const float* src, int64_t parity) {
    v16 wv[KV];
    for (int64_t j = 0; j < KV; ++j) wv[j] = load16(wtap + j * kVecLanes);
    for (int64_t b = 0; b < PB; ++b) {
        const v16 dv = splat(src[b]);
        for (int64_t j = 0; j < KV; ++j) acc[2 * b + parity][j] += dv * wv[j];
    }
}

// dx: one row ih = 2m + a of dx, the 2 PB columns 2 n0 .. 2 n0 + 2 PB - 1 (PB blocks of two,
// even and odd), x KV vectors of 16 input channels c0 ... In padded coordinates, tap (r, s)
// of output (oh, ow) touches (2 oh + r, 2 ow + s), i.e. dx row ih = 2 oh + r - 1 and column
// iw = 2 ow + s - 1. So, per dy channel k, with dy rows m and m + 1 and columns n and n + 1:
//     even row (a = 0):  even column:  w[1, 1] dy[m, n]
//                        odd column:   w[1, 0] dy[m, n + 1] + w[1, 2] dy[m, n]
//     odd row (a = 1):   even column:  w[0, 1] dy[m + 1, n] + w[2, 1] dy[m, n]
//                        odd column:   w[0, 0] dy[m + 1, n + 1] + w[0, 2] dy[m + 1, n]
//                                    + w[2, 0] dy[m, n + 1]     + w[2, 2] dy[m, n]
// (dy[OH, .] and dy[., OW], past the edge, are the padded dy's zeros). Each dx value sums
// over k, then over its taps in the order above, whatever the tile: the same bits always.
template <int64_t PB, int64_t KV>
void dx_tile(const float* dypad, int64_t K, const float* w, int64_t C16, int64_t c0, const Geometry& p, int64_t m,
             int64_t a, int64_t n0, int64_t C, int64_t n, float* dst) {
    v16 acc[2 * PB][KV] = {};
    for (int64_t k = 0; k < K; ++k) {
        const float* d0 = dypad + k * p.DS + m * p.Wq + n0;  // dy row m from column n0
        const float* d1 = d0 + p.Wq;                         // dy row m + 1
        const float* wk = w + k * 9 * C16 + c0;              // + tap * C16: tap (r, s), tap = 3 r + s
        if (a == 0) {
            dx_tap<PB, KV>(acc, wk + 4 * C16, d0, 0);
            dx_tap<PB, KV>(acc, wk + 3 * C16, d0 + 1, 1);
            dx_tap<PB, KV>(acc, wk + 5 * C16, d0, 1);
        } else {
            dx_tap<PB, KV>(acc, wk + 1 * C16, d1, 0);
            dx_tap<PB, KV>(acc, wk + 7 * C16, d0, 0);
            dx_tap<PB, KV>(acc, wk + 0 * C16, d1 + 1, 1);
            dx_tap<PB, KV>(acc, wk + 2 * C16, d1, 1);
            dx_tap<PB, KV>(acc, wk + 6 * C16, d0 + 1, 1);
            dx_tap<PB, KV>(acc, wk + 8 * C16, d0, 1);
        }
    }
    store_tile<2 * PB, KV>(acc, c0, C, nullptr, n, p.H * p.W, dst);
}

// dx of one image (C, H, W) from its padded dy (K, DS): rows of dx in tiles of 7 blocks
// (14 columns), 32 channels at a time, then 16.
void dx_image(const float* dypad, int64_t K, const float* w, int64_t C, const Geometry& p, float* dx) {
    constexpr int64_t PB = 7;
    const int64_t C16 = (C + kVecLanes - 1) / kVecLanes * kVecLanes, HW = p.H * p.W;
    for (int64_t c0 = 0; c0 < C16;) {
        const int64_t kv = C16 - c0 >= 2 * kVecLanes ? 2 : 1;
        for (int64_t ih = 0; ih < p.H; ++ih)
            for (int64_t n0 = 0; 2 * n0 < p.W; n0 += PB) {
                const int64_t n = std::min(2 * PB, p.W - 2 * n0);
                float* d = dx + c0 * HW + ih * p.W + 2 * n0;
                if (kv == 2) dx_tile<PB, 2>(dypad, K, w, C16, c0, p, ih / 2, ih % 2, n0, C, n, d);
                else dx_tile<PB, 1>(dypad, K, w, C16, c0, p, ih / 2, ih % 2, n0, C, n, d);
            }
        c0 += kv * kVecLanes;
    }
}

}  // namespace

bool conv3x3_s2_fast_path_applies(const Conv2dShape& g) {
    return conv_fast_paths_enabled() && g.R == 3 && g.S == 3 && g.stride == 2 && g.pad == 1 && g.groups == 1 &&
           g.N > 0 && g.C > 0 && g.K > 0 && g.OH == (g.H - 1) / 2 + 1 && g.OW == (g.W - 1) / 2 + 1;
}

void conv3x3_s2_forward(const float* x, const float* w, const float* bias, float* y, const Conv2dShape& g) {
    const Geometry p = geometry(g);
    const std::vector<float> packed = pack_weights(w, g.K, g.C, /*for_dx=*/false);
#pragma omp parallel
    {
        float* xpad = conv_thread_buffer(0, g.C * p.PS);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < g.N; ++n) {
            pad_input(x + n * g.C * g.H * g.W, g.C, p, xpad);
            float* yn = y + n * g.K * g.OH * g.OW;
            if (p.PB == 14) fwd_image<14>(xpad, g.C, packed.data(), g.K, bias, p, yn);
            else fwd_image<7>(xpad, g.C, packed.data(), g.K, bias, p, yn);
        }
    }
}

void conv3x3_s2_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                         const Conv2dShape& g, int64_t pieces) {
    const Geometry p = geometry(g);
    const int64_t N = g.N, C = g.C, K = g.K, HW = g.H * g.W, P = g.OH * g.OW;
    const int64_t K16 = (K + kVecLanes - 1) / kVecLanes * kVecLanes;
    const std::vector<float> packed = dx ? pack_weights(w, K, C, /*for_dx=*/true) : std::vector<float>();
    // (pieces, C, 9, K16), uninitialised: each piece's first image stores, the others add
    std::unique_ptr<float[]> partial(dw ? new float[pieces * C * 9 * K16] : nullptr);
    std::vector<double> db_partial(db ? pieces * K : 0, 0.0);  // (pieces, K)
    const std::vector<float> zero_plane(HW, 0.0f);
#pragma omp parallel
    {
        float* dypad = dx ? conv_thread_buffer(0, K * p.DS) : nullptr;
        float* dyT = dw ? conv_thread_buffer(2, P * K16) : nullptr;
#pragma omp for schedule(static)
        for (int64_t piece = 0; piece < pieces; ++piece) {
            const int64_t n0 = piece * N / pieces, n1 = (piece + 1) * N / pieces;
            for (int64_t n = n0; n < n1; ++n) {
                const float* dyn = dy + n * K * P;
                if (db) add_bias_sums(dyn, K, P, db_partial.data() + piece * K);
                if (dw) {
                    transpose_planes(dyn, K, K16, P, dyT);
                    conv3x3_dw_image(dyT, K16, x + n * C * HW, g, zero_plane.data(), n == n0,
                                     partial.get() + piece * C * 9 * K16);
                }
                if (dx) {
                    pad_dy(dyn, K, p, dypad);
                    dx_image(dypad, K, packed.data(), C, p, dx + n * C * HW);
                }
            }
        }
    }
    // dw[k, c, tap] = partial[c * 9 + tap][k] (conv3x3.cpp)
    if (dw) sum_weight_pieces(partial.get(), pieces, C * 9, K, K16, C * 9, 1, dw);
    if (db) sum_bias_pieces(db_partial.data(), pieces, K, db);
}

}  // namespace td
