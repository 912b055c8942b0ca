// tensor/cpu/v16.h: the 16-float vector and the few operations on it that the convolution
// fast paths (conv3x3.cpp, conv3x3_s2.cpp) share.
//
// v16 is a GCC vector type: 16 floats that the compiler keeps in one AVX-512 register
// (-march=native) or four SSE ones (without). `acc + w * x` on v16 is a fused multiply-add,
// and gdb prints a v16 as an array of 16 floats.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

namespace td {
namespace v16ops {

typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));
typedef int32_t i16v __attribute__((vector_size(64)));
constexpr int64_t kVecLanes = 16;  // floats in a v16

inline v16 load16(const float* p) {
    v16 v;
    std::memcpy(&v, p, sizeof v);  // an unaligned vector load
    return v;
}
inline void store16(float* p, v16 v) { std::memcpy(p, &v, sizeof v); }
// All 16 lanes = a: one broadcast load. (a - 0 is a for every a, -0 included, so the
// compiler drops the subtraction; 0 + a turns -0 into +0, so it would keep an add per
// broadcast, on the ports the multiply-adds need.)
inline v16 splat(float a) { return a - v16{}; }

// n floats (half <= n <= 2 half) from s to d as two overlapping halves of one vector type V
// (v4 or v8): the first half floats and the last half floats.
template <typename V>
inline void copy_halves(const float* s, int64_t n, float* d) {
    constexpr int64_t half = sizeof(V) / sizeof(float);
    V lo, hi;
    std::memcpy(&lo, s, sizeof lo);
    std::memcpy(&hi, s + n - half, sizeof hi);
    std::memcpy(d, &lo, sizeof lo);
    std::memcpy(d + n - half, &hi, sizeof hi);
}

// n floats from s to d: 16 at a time, the last 16 overlapping the ones before rather than
// running past the row; rows of 8 to 15 (14x14 planes) as two overlapping halves of 8, of
// 4 to 7 (7x7 planes) as two of 4, and a plain loop below that.
inline void copy_row(const float* s, int64_t n, float* d) {
    if (n < 4) {
        for (int64_t i = 0; i < n; ++i) d[i] = s[i];
    } else if (n < 8) {
        copy_halves<v4>(s, n, d);
    } else if (n < kVecLanes) {
        copy_halves<v8>(s, n, d);
    } else {
        for (int64_t i = 0; i + kVecLanes <= n; i += kVecLanes) store16(d + i, load16(s + i));
        store16(d + n - kVecLanes, load16(s + n - kVecLanes));
    }
}

// The 16 x 16 block in[i][j] = src[i * stride + j] -> out[j][i], in registers: four rounds,
// round s (8, 4, 2, 1) swapping the s x s sub-blocks across the diagonal, i.e. trading bit s
// of the row number for bit s of the lane number. After the four rounds, row j holds what
// was column j. (Each round is 16 two-vector shuffles, vpermt2ps on AVX-512. s is a template
// parameter so that the compiler computes the shuffles' lane indices once, at compile time:
// computed at run time, they cost more than the shuffles.)
template <int32_t s>
inline void transpose_round(v16 r[16]) {
    i16v lo, hi;  // lane j of a (0..15) or of b (16..31)
    for (int32_t j = 0; j < 16; ++j) {
        lo[j] = (j & s) ? 16 + j - s : j;  // a's low half of the pair, then b's
        hi[j] = (j & s) ? 16 + j : j + s;
    }
    for (int32_t i = 0; i < 16; ++i) {
        if (i & s) continue;
        const v16 a = r[i], b = r[i + s];
        r[i] = __builtin_shuffle(a, b, lo);
        r[i + s] = __builtin_shuffle(a, b, hi);
    }
}
inline void transpose16(v16 r[16]) {
    transpose_round<8>(r);
    transpose_round<4>(r);
    transpose_round<2>(r);
    transpose_round<1>(r);
}

// The first n = 7, 8 or 14 lanes of v to d[0 .. n - 1], as copy_row does: two overlapping
// halves straight from the register (a copy through memory would stall the loads behind
// the wider store).
template <int64_t n>
inline void store_run(float* d, v16 v) {
    if constexpr (n == 14) {
        const v8 lo = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
        const v8 hi = __builtin_shufflevector(v, v, 6, 7, 8, 9, 10, 11, 12, 13);
        std::memcpy(d, &lo, sizeof lo);
        std::memcpy(d + 6, &hi, sizeof hi);
    } else if constexpr (n == 8) {
        const v8 lo = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
        std::memcpy(d, &lo, sizeof lo);
    } else {
        static_assert(n == 7, "row tiles are 7, 8 or 14 wide");
        const v4 lo = __builtin_shufflevector(v, v, 0, 1, 2, 3);
        const v4 hi = __builtin_shufflevector(v, v, 3, 4, 5, 6);
        std::memcpy(d, &lo, sizeof lo);
        std::memcpy(d + 3, &hi, sizeof hi);
    }
}

// The first n < 16 lanes of v to d[0 .. n - 1], n known only at run time (a plane's last,
// shorter tile): through a stack copy, off the hot path.
inline void store_first(float* d, v16 v, int64_t n) {
    float lanes[kVecLanes];
    store16(lanes, v);
    std::copy(lanes, lanes + n, d);
}

// s[0 .. n - 1] in the first n <= 16 lanes, zeros after them (reads nothing past s + n).
inline v16 load_first(const float* s, int64_t n) {
    if (n == kVecLanes) return load16(s);
    float lanes[kVecLanes] = {};
    std::copy(s, s + n, lanes);
    return load16(lanes);
}

}  // namespace v16ops
}  // namespace td
