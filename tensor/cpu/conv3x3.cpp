// tensor/cpu/conv3x3.cpp: the fast path for the UNet's workhorse, the 3x3 convolution with
// stride 1 and padding 1, forward and backward, without im2col.
//
// conv.cpp's im2col + GEMM is the reference: read it first. This file computes the same
// sums (tests/test_conv_fast.cpp holds the two equal on awkward shapes) and differs in
// five ways, each a saving that showed up in the profile of a training step:
//
// 1. No 9x copy of the input. Each input plane is copied once into a zero-bordered plane
//    with row stride Wp = W + 1 ("padded"): one zero column per row, which is both the
//    right border of one row and the left border of the next (pixel (h, w) sits at
//    (h + 1) * Wp + w + 1, so column 0 of each stored row is zero). There, output position
//    q = oh * Wp + ow reads tap (r, s) at q + r * Wp + s: the nine taps are nine fixed
//    offsets, so 16 neighbouring outputs read 16 neighbouring inputs per tap, one vector
//    load, whatever the row boundaries. The one column per row that is not an output
//    (ow = W) is computed and thrown away: 1 / Wp of the work, far less than im2col's copies.
// 2. A register-blocked micro-kernel: KB output channels x NV vectors of 16 outputs live in
//    registers while all C * 9 (channel, tap) pairs stream past. Per pair: NV loads, KB
//    weight broadcasts, KB * NV fused multiply-adds. Eigen, given the im2col matrix,
//    would first pack it again into panels of its own (a third copy of the input).
// 3. The backward pass reuses the kernels. With stride 1 and padding 1,
//        dx = conv3x3(dy, w flipped: (r, s) -> (2 - r, 2 - s), channel axes swapped),
//    the same kernel; and
//        dW[k, c, r, s] = sum over n, h, w of dy[n, k, h, w] * x[n, c, h + r - 1, w + s - 1]
//    is nine dot products per (k, c) pair, computed together in one pass over dy (turned
//    round so that channels sit in the lanes) and x, 16 output channels k per vector (see
//    dw_tile for why that way round).
// 4. Planes 7, 8, 14 or 28 wide put output channels in the lanes instead (row_tile): at 7
//    and 14 wide the padded layout's zero column and the rounding to whole vectors are an
//    eighth to a quarter of the work, and a tile of 14 positions (one row of 14, a piece of
//    a row of 28, or two rows of 7) x 32 channels wastes none.
//    The tile is turned round into the output in registers, 16 x 16 at a time.
// 5. Taps that read the zero border are skipped, not multiplied by zero, where that is
//    cheap to know: in dW (per row, and per column while compiling) and in the row tiles
//    of 7- and 14-wide planes, which then read the image unpadded (seven_tile). At 7x7
//    that is 19% of the multiply-adds, at 14x14 9%.
//
// Vectors are GCC vector types (v16: 16 floats; tensor/cpu/v16.h): `acc + w * x` on them is one AVX-512
// fused multiply-add with -march=native (four SSE ones without), and gdb prints them
// as arrays. Parallelism and the order of every sum are those of conv.cpp: one image per
// work item forward; the dW sum over the batch in fixed pieces of the batch added in
// order, so the results are the same bits for any thread count.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "tensor/cpu/conv_fast.h"
#include "tensor/cpu/lane_sum.h"
#include "tensor/cpu/v16.h"

namespace td {

using namespace v16ops;

namespace {

constexpr int64_t kMaxKB = 16;  // output channels per micro-kernel call, at most (forward, dx)

// The padded geometry of one H x W plane.
struct Padded {
    int64_t H, W;
    int64_t Wp;  // row stride: W + 1 (one zero column, shared by neighbouring rows)
    int64_t L;   // outputs computed per plane: H rows of Wp (1 thrown away per row)
    int64_t NV;  // vectors of 16 outputs per micro-kernel call: 1, 2 or 3
    int64_t KB;  // output channels per call: 8, or 16 when NV = 1, so that there are always
                 // 16 to 24 independent accumulators to hide the multiply-add latency
    int64_t Lv;  // L rounded up to whole calls (NV * 16 outputs)
    int64_t PS;  // floats per padded plane: every read of every call stays inside
    int64_t PB;  // 7, 8 or 14 (dividing W): forward and dx by row tiles (see row_tile); 0: micro-kernel
};

Padded padded_geometry(int64_t H, int64_t W) {
    Padded p{H, W, W + 1, H * (W + 1), 3, 8, 0, 0, 0};
    // The largest NV whose rounding wastes at most 1/32 of the plane more than NV = 1's
    // (28x28: 3, 14x14: 2, 7x7: 2): more vectors per call reuse each weight broadcast more.
    int64_t best = -1;
    const int64_t lv1 = (p.L + kVecLanes - 1) / kVecLanes * kVecLanes;
    for (int64_t nv = 3; nv >= 1; --nv) {
        int64_t step = nv * kVecLanes, lv = (p.L + step - 1) / step * step;
        if (lv * 32 <= lv1 * 33) {
            best = lv;
            p.NV = nv;
            break;
        }
    }
    p.Lv = best;
    p.KB = p.NV == 1 ? 16 : 8;
    // the last call reads up to Lv - 1 + 2 Wp + 2 (tap (2, 2)); dW reads dy from Wp + 1 on
    p.PS = (p.Lv + 2 * p.Wp + 2 + kVecLanes - 1) / kVecLanes * kVecLanes;
    // Row tiles where a row splits into pieces of 14 (28x28: measured as fast as the
    // micro-kernel, 14x14: 17% faster), and for 7 and 8 wide planes.
    p.PB = W % 14 == 0 ? 14 : (W == 7 || W == 8) ? W : 0;
    return p;
}

// planes (count, H, W) -> padded (count, PS): pixel (h, w) at (h + 1) * Wp + (w + 1), zeros
// elsewhere. Each float of the padded plane is written once: the top border row, then per
// row its pixels and the zero column after them, then the bottom border and the tail.
void pad_planes(const float* src, int64_t count, const Padded& p, float* dst) {
    for (int64_t i = 0; i < count; ++i) {
        float* d = dst + i * p.PS;
        const float* s = src + i * p.H * p.W;
        std::fill(d, d + p.Wp + 1, 0.0f);  // the top border and row 0's zero column
        for (int64_t h = 0; h < p.H; ++h) {
            copy_row(s + h * p.W, p.W, d + (h + 1) * p.Wp + 1);
            d[(h + 2) * p.Wp] = 0.0f;  // the zero column between this row and the next
        }
        std::fill(d + (p.H + 1) * p.Wp + 1, d + p.PS, 0.0f);
    }
}

// The offset of tap (r, s) in a padded plane, tap = r * 3 + s.
int64_t tap_offset(const Padded& p, int64_t tap) { return (tap / 3) * p.Wp + tap % 3; }

// The micro-kernel: out[k][q0 + i] = sum over c, tap of w[c][tap][k] * in[c][q0 + i + offset(tap)]
// for k < KB and i < NV * 16. in: C padded planes; w: (C, 9, KB); out: (KB, Lv).
// (NV and KB are template parameters so that acc is a fixed-size array the compiler keeps
// in registers; the three versions are the same loop.)
template <int64_t NV, int64_t KB>
void micro_kernel(const float* in, int64_t C, const float* w, const Padded& p, int64_t q0, float* out) {
    int64_t off[9];
    for (int64_t tap = 0; tap < 9; ++tap) off[tap] = tap_offset(p, tap);
    v16 acc[KB][NV] = {};
    for (int64_t c = 0; c < C; ++c) {
        const float* plane = in + c * p.PS + q0;
        const float* wc = w + c * 9 * KB;
        for (int64_t tap = 0; tap < 9; ++tap) {
            v16 xv[NV];
            for (int64_t j = 0; j < NV; ++j) xv[j] = load16(plane + off[tap] + j * kVecLanes);
            for (int64_t k = 0; k < KB; ++k) {
                v16 wk = splat(wc[tap * KB + k]);
                for (int64_t j = 0; j < NV; ++j) acc[k][j] += wk * xv[j];
            }
        }
    }
    for (int64_t k = 0; k < KB; ++k)
        for (int64_t j = 0; j < NV; ++j) store16(out + k * p.Lv + q0 + j * kVecLanes, acc[k][j]);
}

// One output block: KB channels of one image over the whole plane, into out (KB, Lv).
void conv_block(const float* in, int64_t C, const float* w, const Padded& p, float* out) {
    const int64_t step = p.NV * kVecLanes;
    for (int64_t q0 = 0; q0 < p.Lv; q0 += step) {
        if (p.NV == 3) micro_kernel<3, 8>(in, C, w, p, q0, out);
        else if (p.NV == 2) micro_kernel<2, 8>(in, C, w, p, q0, out);
        else micro_kernel<1, 16>(in, C, w, p, q0, out);
    }
}

// Weights for the micro-kernel, a block of KB output channels at a time:
// packed[block][c][tap][kk] = w_out_in(block * KB + kk, c, tap), 0 past the last channel.
// Forward: w_out_in(k, c, tap) = w[k, c, tap]. For dx: outputs are x's channels and inputs
// dy's, w_out_in(c, k, tap) = w[k, c, 8 - tap] (the kernel flipped).
std::vector<float> pack_weights(const float* w, int64_t K, int64_t C, int64_t KB, bool for_dx) {
    const int64_t outs = for_dx ? C : K, ins = for_dx ? K : C;
    const int64_t blocks = (outs + KB - 1) / KB;
    std::vector<float> packed(blocks * ins * 9 * KB, 0.0f);
    for (int64_t o = 0; o < outs; ++o)
        for (int64_t i = 0; i < ins; ++i)
            for (int64_t tap = 0; tap < 9; ++tap) {
                float v = for_dx ? w[(i * C + o) * 9 + (8 - tap)] : w[(o * C + i) * 9 + tap];
                packed[(((o / KB) * ins + i) * 9 + tap) * KB + o % KB] = v;
            }
    return packed;
}

// A tile's sums (positions x channels) into dst (channels x positions), + bias: each block
// of 16 channels turned round in registers (transpose16), every channel's PB positions
// written as one run. (Turned round one float at a time, reading the tile with a stride of
// 16 or 32 floats, the copy was a scalar load, add and store per output.) dst: the tile's
// first position in output channel k0's plane; HW: floats per plane.
template <int64_t PB, int64_t KV>
void store_tile(const v16 (&acc)[PB][KV], int64_t k0, int64_t outs, const float* bias, int64_t HW, float* dst) {
    for (int64_t j = 0; j < KV; ++j) {
        v16 r[16];  // row i: position i's 16 channels (rows past PB: zero, unused)
        for (int64_t i = 0; i < 16; ++i) r[i] = i < PB ? acc[i][j] : v16{};
        transpose16(r);  // row kk: channel kk's positions
        const int64_t kb = k0 + j * kVecLanes;
        for (int64_t kk = 0; kk < kVecLanes && kb + kk < outs; ++kk)
            store_run<PB>(dst + (j * kVecLanes + kk) * HW, r[kk] + splat(bias ? bias[kb + kk] : 0.0f));
    }
}

// Planes 7, 8, 14 or 28 wide by row tiles: output channels in the lanes instead of
// positions. At 14x14 the micro-kernel computes Lv = 224 outputs for 196 (the zero column
// of each row, then rounding up to whole vectors), at 7x7 64 for 49. A row tile computes
// one output row, or a piece of 14 of a longer row: PB positions x KV vectors of 16
// output channels, with
//     acc[i][j] += splat(in[c][q0 + i + offset(tap)]) * w[c][tap][k0 + 16 j .. + 15]
// per (channel, tap): KV weight loads and PB broadcasts for PB * KV multiply-adds (14 x 2:
// 16 loads, 28 multiply-adds). Each output still sums over (c, tap) in the micro-kernel's
// order, so the two give the same bits. w: (ins, 9, O16), O16 = outs rounded up to 16.
// (7- and 14-wide planes take seven_tile, below: the same tile, read unpadded.)
template <int64_t PB, int64_t KV>
void row_tile(const float* in, int64_t C, const float* w, int64_t O16, int64_t k0, const Padded& p, const int64_t* off,
              int64_t q0, int64_t outs, const float* bias, int64_t HW, float* dst) {
    v16 acc[PB][KV] = {};
    for (int64_t c = 0; c < C; ++c) {
        const float* plane = in + c * p.PS + q0;
        const float* wc = w + c * 9 * O16 + k0;
        for (int64_t tap = 0; tap < 9; ++tap) {
            v16 wv[KV];
            for (int64_t j = 0; j < KV; ++j) wv[j] = load16(wc + tap * O16 + j * kVecLanes);
            const float* xr = plane + off[tap];
            for (int64_t i = 0; i < PB; ++i) {
                const v16 xv = splat(xr[i]);
                for (int64_t j = 0; j < KV; ++j) acc[i][j] += xv * wv[j];
            }
        }
    }
    store_tile<PB, KV>(acc, k0, outs, bias, HW, dst);
}

// Planes 7 and 14 wide (the UNet's two lowest levels for a 28x28 input) take a row tile of
// their own, 14 positions in two groups of seven:
// - 7 wide: two output rows per tile, group t = row oh0 + t (the last row alone when H is
//   odd): twice the multiply-adds per weight load and per transpose of a one-row tile,
//   where the packed weights every tile streams through (37 KB for 32 -> 32 channels) are
//   more than L1 holds;
// - 14 wide (HALVES): one output row, group t = its columns 7t .. 7t + 6.
// Either way position (t, col) sits 7t + col after the tile's first, in the input plane and
// in the output. The planes are read as they are, not padded: a tap that would read the
// zero border is skipped instead of multiplied by zero. A position has no neighbour left
// of the row's first column (tap s = 0), right of its last (s = 2), above the plane's first
// row (r = 0) or below its last (r = 2): at 7x7 19% of all taps ((19/21)^2 = 81% are
// inside), at 14x14 9%, and no copy of the image is made.
// The columns are fixed, so seven_tap takes s as a template parameter: "the row's first
// column at s = 0" is decided while compiling and those multiply-adds are simply not in
// the code. (A runtime test, or a select of zero, there cost more registers than the 28
// accumulators leave, and the tile spilled; so did one group of 14.) Whether a group's
// neighbour row exists is tested once per tap (live). The sums that remain run in the
// same (c, tap) order; a skipped term was a zero. (At 28 wide the same tiles, in pieces
// of 14, measured slower than row_tile on the padded planes.)
template <bool HALVES>
constexpr bool starts_row(int64_t t) {
    return !HALVES || t == 0;
}
template <bool HALVES, int64_t GROUPS>
constexpr bool ends_row(int64_t t) {
    return !HALVES || t == GROUPS - 1;
}

template <int64_t S, int64_t GROUPS, int64_t KV, bool HALVES>
inline __attribute__((always_inline)) void seven_tap(v16 (&acc)[GROUPS * 7][KV], const float* x0, const float* wt,
                                                     const bool* live) {
    v16 wv[KV];
    for (int64_t j = 0; j < KV; ++j) wv[j] = load16(wt + j * kVecLanes);
    for (int64_t t = 0; t < GROUPS; ++t) {
        if (!live[t]) continue;  // group t's neighbour row is off the plane
        for (int64_t col = 0; col < 7; ++col) {
            const bool off_left = col == 0 && S == 0 && starts_row<HALVES>(t);
            const bool off_right = col == 6 && S == 2 && ends_row<HALVES, GROUPS>(t);
            if (off_left || off_right) continue;
            const v16 xv = splat(x0[t * 7 + col + S]);
            for (int64_t j = 0; j < KV; ++j) acc[t * 7 + col][j] += xv * wv[j];
        }
    }
}

// Output row oh0 (and oh0 + 1, 7 wide with GROUPS = 2) of one image, channels k0 ..
// k0 + 16 KV - 1. in: the image's ins planes as they are; w, O16, dst as row_tile's.
template <int64_t GROUPS, int64_t KV, bool HALVES>
void seven_tile(const float* in, int64_t C, const float* w, int64_t O16, int64_t k0, const Padded& p, int64_t oh0,
                int64_t outs, const float* bias, float* dst) {
    const int64_t HW = p.H * p.W;
    bool live[3][GROUPS];  // group t has a row above (r = 0), its own (1), one below (2)
    for (int64_t r = 0; r < 3; ++r)
        for (int64_t t = 0; t < GROUPS; ++t) {
            const int64_t row = oh0 + (HALVES ? 0 : t) + r - 1;
            live[r][t] = row >= 0 && row < p.H;
        }
    v16 acc[GROUPS * 7][KV] = {};
    for (int64_t c = 0; c < C; ++c) {
        const float* wc = w + c * 9 * O16 + k0;
        for (int64_t r = 0; r < 3; ++r) {
            // tap (r, s) of position i reads in[c][oh0 + r - 1][s - 1 + i] = x0[i + s]
            const float* x0 = in + c * HW + (oh0 + r - 1) * p.W - 1;
            seven_tap<0, GROUPS, KV, HALVES>(acc, x0, wc + (r * 3 + 0) * O16, live[r]);
            seven_tap<1, GROUPS, KV, HALVES>(acc, x0, wc + (r * 3 + 1) * O16, live[r]);
            seven_tap<2, GROUPS, KV, HALVES>(acc, x0, wc + (r * 3 + 2) * O16, live[r]);
        }
    }
    store_tile<GROUPS * 7, KV>(acc, k0, outs, bias, HW, dst);
}

// One image of a 7- or 14-wide plane: in (ins, H, W) as it is, dst (outs, H, W).
void seven_tiles(const float* in, int64_t ins, const float* w, int64_t outs, const float* bias, const Padded& p,
                 float* dst) {
    const int64_t O16 = (outs + kVecLanes - 1) / kVecLanes * kVecLanes, HW = p.H * p.W;
    for (int64_t k0 = 0; k0 < O16;) {  // 32 channels at a time (their weights stay in L1), then 16
        const bool kv2 = O16 - k0 >= 2 * kVecLanes;
        for (int64_t oh = 0; oh < p.H; oh += p.W == 7 ? 2 : 1) {
            float* d = dst + k0 * HW + oh * p.W;
            if (p.W == 14 && kv2) seven_tile<2, 2, true>(in, ins, w, O16, k0, p, oh, outs, bias, d);
            else if (p.W == 14) seven_tile<2, 1, true>(in, ins, w, O16, k0, p, oh, outs, bias, d);
            else if (oh + 1 < p.H && kv2) seven_tile<2, 2, false>(in, ins, w, O16, k0, p, oh, outs, bias, d);
            else if (oh + 1 < p.H) seven_tile<2, 1, false>(in, ins, w, O16, k0, p, oh, outs, bias, d);
            else if (kv2) seven_tile<1, 2, false>(in, ins, w, O16, k0, p, oh, outs, bias, d);
            else seven_tile<1, 1, false>(in, ins, w, O16, k0, p, oh, outs, bias, d);
        }
        k0 += (kv2 ? 2 : 1) * kVecLanes;
    }
}

// One image of an 8- or 28-wide plane by row tiles: in padded, dst (outs, H, W).
template <int64_t PB>
void row_tiles(const float* in, int64_t ins, const float* w, int64_t outs, const float* bias, const Padded& p,
               float* dst) {
    int64_t off[9];
    for (int64_t tap = 0; tap < 9; ++tap) off[tap] = tap_offset(p, tap);
    const int64_t O16 = (outs + kVecLanes - 1) / kVecLanes * kVecLanes, HW = p.H * p.W;
    for (int64_t k0 = 0; k0 < O16;) {  // 32 channels at a time (their weights stay in L1), then 16
        const int64_t kv = O16 - k0 >= 2 * kVecLanes ? 2 : 1;
        for (int64_t oh = 0; oh < p.H; ++oh)
            for (int64_t ow = 0; ow < p.W; ow += PB) {  // the row in pieces of PB
                float* d = dst + k0 * HW + oh * p.W + ow;
                if (kv == 2) row_tile<PB, 2>(in, ins, w, O16, k0, p, off, oh * p.Wp + ow, outs, bias, HW, d);
                else row_tile<PB, 1>(in, ins, w, O16, k0, p, off, oh * p.Wp + ow, outs, bias, HW, d);
            }
        k0 += kv * kVecLanes;
    }
}

// 7- and 14-wide planes: seven_tiles reads the image as it is.
bool reads_unpadded(const Padded& p) { return p.W == 7 || p.W == 14; }

// Output channels per block of packed weights: the micro-kernel's KB, or for the row tiles
// all of them in one block, rounded up to 16 (the layout (ins, 9, O16) row_tile reads).
int64_t weight_block(const Padded& p, int64_t outs) {
    return p.PB ? (outs + kVecLanes - 1) / kVecLanes * kVecLanes : p.KB;
}

// dst (outs, H, W) of one image = the computed planes, every block of KB (+ bias). in: the
// image's planes padded, or as they are where the tiles want them so (reads_unpadded).
void conv_image(const float* in, int64_t ins, const std::vector<float>& packed, int64_t outs, const float* bias,
                const Padded& p, float* out_buf, float* dst) {
    if (reads_unpadded(p)) return seven_tiles(in, ins, packed.data(), outs, bias, p, dst);
    if (p.PB == 8) return row_tiles<8>(in, ins, packed.data(), outs, bias, p, dst);
    if (p.PB == 14) return row_tiles<14>(in, ins, packed.data(), outs, bias, p, dst);
    const int64_t KB = p.KB;
    const int64_t blocks = (outs + KB - 1) / KB;
    for (int64_t b = 0; b < blocks; ++b) {
        conv_block(in, ins, packed.data() + b * ins * 9 * KB, p, out_buf);
        for (int64_t kk = 0; kk < KB && b * KB + kk < outs; ++kk) {
            const int64_t k = b * KB + kk;
            const float bk = bias ? bias[k] : 0.0f;
            for (int64_t h = 0; h < p.H; ++h) {  // keep the W real columns of each row
                const float* src = out_buf + kk * p.Lv + h * p.Wp;
                float* d = dst + (k * p.H + h) * p.W;
                for (int64_t w = 0; w < p.W; ++w) d[w] = src[w] + bk;
            }
        }
    }
}

// dW of one image, added onto partial (C, 9, K16), K16 = K rounded up to 16 (stored there,
// for the first image of a piece of the batch: partial starts uninitialised, no zero pass):
//     dW[k, c, (r, s)] = sum over dy's positions (oh, ow) of
//                        dy[k, oh, ow] * x[c, stride oh + r - 1, stride ow + s - 1]
// over the taps inside the plane (outside, x is the zero padding). Stride 1 or 2: the
// stride-2 path (conv3x3_s2.cpp) uses these functions too. Vectorised over k, 16 output
// channels per vector, so that the x side is a broadcast (one 4-byte load) and the dy side
// one aligned load per position: dyT (OH OW, K16) is dy transposed, zero past channel K.
// (Vectorised over positions instead, every tap would be an unaligned 64-byte load, and
// those, not the multiply-adds, set the pace.)
//
// The register tile: KV vectors of output channels x CB input channels x 9 taps. Per
// position that is KV loads of dy and CB * 9 broadcasts of x for KV * CB * 9 multiply-
// adds: with KV = 2, CB = 1 (18 accumulators) 11 loads feed 18 multiply-adds, where
// KV = 1, CB = 3 (27 accumulators) needs 28 loads for 27. So output channels go two
// vectors (32 channels) at a time, and a last single vector (K16 not a multiple of 32)
// takes the 1 x 3 tile. Every accumulator still sums over positions in order: the tile
// changes which sums run side by side, not the order within a sum.
//
// x is read as it is, not padded: a tap outside the plane is skipped. Whether the row
// above (below) exists is tested once per row (live); whether the one to the left (right)
// does is fixed for a row's first and last position, so dw_position takes the column as a
// template parameter and those multiply-adds are not in the code. At 7x7 that skips 19%
// of the multiply-adds, at 14x14 9%.
enum Column : int { kFirstColumn = 1, kLastColumn = 2 };  // a position's place in its row

// One position of dy: dyq its 16 KV channels in dyT, xq where tap (1, 1) reads x.
template <int64_t KV, int64_t CB, int COLUMN>
inline __attribute__((always_inline)) void dw_position(v16 (&acc)[CB][9][KV], const float* dyq, const float* const* xc,
                                                       int64_t xq, const int64_t* off, const bool* live) {
    v16 dyv[KV];  // dy[k0 .. k0 + 16 KV - 1] at this position
    for (int64_t j = 0; j < KV; ++j) dyv[j] = load16(dyq + j * kVecLanes);
    for (int64_t r = 0; r < 3; ++r) {
        if (!live[r]) continue;  // the row above (below) is off the plane
        for (int64_t s = 0; s < 3; ++s) {
            if (((COLUMN & kFirstColumn) && s == 0) || ((COLUMN & kLastColumn) && s == 2)) continue;
            for (int64_t cc = 0; cc < CB; ++cc) {
                const v16 xv = splat(xc[cc][xq + off[r * 3 + s]]);
                for (int64_t j = 0; j < KV; ++j) acc[cc][r * 3 + s][j] += xv * dyv[j];
            }
        }
    }
}

// off[tap]: where tap (r, s) sits in a plane of x, from tap (1, 1).
template <int64_t KV, int64_t CB>
void dw_tile(const float* dyT, int64_t K16, int64_t k0, const float* const* xc, const int64_t* off, int64_t cn,
             const Conv2dShape& g, bool first, float* partial_c0) {
    v16 acc[CB][9][KV] = {};
    // the last column has no right neighbour when it sits on x's last column
    const bool last_on_edge = g.stride * (g.OW - 1) + 1 >= g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t ih = g.stride * oh;  // the row tap r = 1 reads
        const bool live[3] = {ih > 0, true, ih + 1 < g.H};
        const float* dy0 = dyT + oh * g.OW * K16 + k0;
        const int64_t x0 = ih * g.W, last = g.OW - 1;
        if (g.OW == 1) {
            if (last_on_edge) dw_position<KV, CB, kFirstColumn | kLastColumn>(acc, dy0, xc, x0, off, live);
            else dw_position<KV, CB, kFirstColumn>(acc, dy0, xc, x0, off, live);
            continue;
        }
        dw_position<KV, CB, kFirstColumn>(acc, dy0, xc, x0, off, live);
        for (int64_t ow = 1; ow < last; ++ow)
            dw_position<KV, CB, 0>(acc, dy0 + ow * K16, xc, x0 + g.stride * ow, off, live);
        if (last_on_edge) dw_position<KV, CB, kLastColumn>(acc, dy0 + last * K16, xc, x0 + g.stride * last, off, live);
        else dw_position<KV, CB, 0>(acc, dy0 + last * K16, xc, x0 + g.stride * last, off, live);
    }
    for (int64_t cc = 0; cc < cn; ++cc)
        for (int64_t tap = 0; tap < 9; ++tap)
            for (int64_t j = 0; j < KV; ++j) {
                float* dst = partial_c0 + (cc * 9 + tap) * K16 + k0 + j * kVecLanes;
                store16(dst, first ? acc[cc][tap][j] : load16(dst) + acc[cc][tap][j]);
            }
}

}  // namespace

void conv3x3_dw_image(const float* dyT, int64_t K16, const float* x, const Conv2dShape& g, const float* zero_plane,
                      bool first, float* partial) {
    const int64_t C = g.C, HW = g.H * g.W;
    int64_t off[9];
    for (int64_t tap = 0; tap < 9; ++tap) off[tap] = (tap / 3 - 1) * g.W + tap % 3 - 1;
    int64_t k0 = 0;
    for (; k0 + 2 * kVecLanes <= K16; k0 += 2 * kVecLanes)
        for (int64_t c = 0; c < C; ++c) {
            const float* xc[1] = {x + c * HW};
            dw_tile<2, 1>(dyT, K16, k0, xc, off, 1, g, first, partial + c * 9 * K16);
        }
    constexpr int64_t CB = 3;
    if (C == 1) {  // a grey conv_in: no zero planes to fill CB
        for (; k0 < K16; k0 += kVecLanes) dw_tile<1, 1>(dyT, K16, k0, &x, off, 1, g, first, partial);
        return;
    }
    for (; k0 < K16; k0 += kVecLanes)
        for (int64_t c0 = 0; c0 < C; c0 += CB) {
            const int64_t cn = std::min(CB, C - c0);
            const float* xc[CB];  // past the last channel: a plane of zeros
            for (int64_t cc = 0; cc < CB; ++cc) xc[cc] = cc < cn ? x + (c0 + cc) * HW : zero_plane;
            dw_tile<1, CB>(dyT, K16, k0, xc, off, cn, g, first, partial + c0 * 9 * K16);
        }
}

void transpose_planes(const float* src, int64_t K, int64_t K16, int64_t P, float* dst) {
    for (int64_t k0 = 0; k0 < K16; k0 += kVecLanes)
        for (int64_t q0 = 0; q0 < P; q0 += kVecLanes) {
            const int64_t n = std::min(kVecLanes, P - q0);
            v16 r[16];
            for (int64_t i = 0; i < 16; ++i) r[i] = k0 + i < K ? load_first(src + (k0 + i) * P + q0, n) : v16{};
            transpose16(r);
            for (int64_t j = 0; j < n; ++j) store16(dst + (q0 + j) * K16 + k0, r[j]);
        }
}

bool conv3x3_fast_path_applies(const Conv2dShape& g, bool wants_dx) {
    // Any number of input channels for the forward pass and dW. dx wants 4 or more: for an
    // RGB or grey conv_in its 16-channel blocks (the outputs of dx are x's channels) would
    // be mostly padding, and im2col's columns are short anyway. (A conv_in's dx is rarely
    // wanted: the network's input has no gradient.)
    return conv_fast_paths_enabled() && g.R == 3 && g.S == 3 && g.stride == 1 && g.pad == 1 && g.groups == 1 &&
           g.N > 0 && g.C >= (wants_dx ? 4 : 1) && g.K > 0;
}

void conv3x3_forward(const float* x, const float* w, const float* bias, float* y, const Conv2dShape& g) {
    const Padded p = padded_geometry(g.H, g.W);
    const std::vector<float> packed = pack_weights(w, g.K, g.C, weight_block(p, g.K), /*for_dx=*/false);
#pragma omp parallel
    {
        float* xpad = conv_thread_buffer(0, g.C * p.PS);
        float* out = conv_thread_buffer(1, kMaxKB * p.Lv);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < g.N; ++n) {
            const float* xn = x + n * g.C * g.H * g.W;
            if (!reads_unpadded(p)) pad_planes(xn, g.C, p, xpad);
            conv_image(reads_unpadded(p) ? xn : xpad, g.C, packed, g.K, bias, p, out, y + n * g.K * g.H * g.W);
        }
    }
}

void conv3x3_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                      const Conv2dShape& g, int64_t pieces) {
    const Padded p = padded_geometry(g.H, g.W);
    const int64_t N = g.N, C = g.C, K = g.K, HW = g.H * g.W, K16 = (K + kVecLanes - 1) / kVecLanes * kVecLanes;
    const std::vector<float> packed =
        dx ? pack_weights(w, K, C, weight_block(p, C), /*for_dx=*/true) : std::vector<float>();
    // (pieces, C, 9, K16), uninitialised: each piece's first image stores, the others add
    std::unique_ptr<float[]> partial(dw ? new float[pieces * C * 9 * K16] : nullptr);
    std::vector<double> db_partial(db ? pieces * K : 0, 0.0);  // (pieces, K)
    const std::vector<float> zero_plane(HW, 0.0f);
#pragma omp parallel
    {
        // dy padded only for the micro-kernel's dx; dW and the row tiles read planes as they are
        float* dypad = dx && !reads_unpadded(p) ? conv_thread_buffer(0, K * p.PS) : nullptr;
        float* out = dx ? conv_thread_buffer(2, kMaxKB * p.Lv) : nullptr;
        float* dyT = dw ? conv_thread_buffer(3, HW * K16) : nullptr;
#pragma omp for schedule(static)
        for (int64_t piece = 0; piece < pieces; ++piece) {
            const int64_t n0 = piece * N / pieces, n1 = (piece + 1) * N / pieces;
            for (int64_t n = n0; n < n1; ++n) {
                const float* dyn = dy + n * K * HW;
                if (db)  // while this image's dy is in cache (conv.cpp reads all of dy again)
                    add_bias_sums(dyn, K, HW, db_partial.data() + piece * K);
                if (dw) {
                    transpose_planes(dyn, K, K16, HW, dyT);
                    conv3x3_dw_image(dyT, K16, x + n * C * HW, g, zero_plane.data(), n == n0,
                                     partial.get() + piece * C * 9 * K16);
                }
                if (dypad) pad_planes(dyn, K, p, dypad);
                if (dx) conv_image(dypad ? dypad : dyn, K, packed, C, nullptr, p, out, dx + n * C * HW);
            }
        }
    }
    // dw[k, c, tap] = partial[c * 9 + tap][k]
    if (dw) sum_weight_pieces(partial.get(), pieces, C * 9, K, K16, C * 9, 1, dw);
    if (db) sum_bias_pieces(db_partial.data(), pieces, K, db);
}

void add_bias_sums(const float* dy_image, int64_t K, int64_t P, double* db_piece) {
    for (int64_t k = 0; k < K; ++k) db_piece[k] += lane_sum(dy_image + k * P, P);
}

void sum_bias_pieces(const double* db_partial, int64_t pieces, int64_t K, float* db) {
    for (int64_t k = 0; k < K; ++k) {  // db_partial[0] + db_partial[1] + ... in that order
        double s = 0.0;
        for (int64_t piece = 0; piece < pieces; ++piece) s += db_partial[piece * K + k];
        db[k] = (float)s;
    }
}

void sum_weight_pieces(const float* partial, int64_t pieces, int64_t S, int64_t L, int64_t L16, int64_t l_stride,
                       int64_t s_stride, float* dw) {
    // partial[0] + partial[1] + ... in that order (in double), as conv.cpp does. Walked by s
    // and 16 lanes l at a time, so each piece gives one contiguous 64-byte read (walked by l,
    // every read would be a different cache line of the whole buffer).
    const int64_t numel = S * L16;
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < S; ++s)
        for (int64_t l0 = 0; l0 < L; l0 += kVecLanes) {
            double acc[kVecLanes] = {};
            for (int64_t piece = 0; piece < pieces; ++piece)
                for (int64_t i = 0; i < kVecLanes; ++i) acc[i] += partial[piece * numel + s * L16 + l0 + i];
            for (int64_t i = 0; i < kVecLanes && l0 + i < L; ++i)
                dw[(l0 + i) * l_stride + s * s_stride] = (float)acc[i];
        }
}

}  // namespace td
