// tensor/cpu/random.cpp: fill_random, the random numbers behind rand() and randn()
// (tensor/random.h), and the reference cuda/random.cu must reproduce.
//
// Element i of dst comes from Philox block (first_block + i / 4), word i % 4
// (philox_block, tensor/random.cpp). Each block is a pure function of (seed, block
// number), so the loop over blocks may run on any number of threads, in any order, and
// still give the same numbers.
#include <array>
#include <cmath>
#include <cstdint>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/random.h"

namespace td {

static constexpr int64_t kParallelMin = 65536;  // numbers; below this, threads cost more than they save

// Why std::fma for lo + (hi - lo) u and mean + std z: written as a plain multiply-add, the
// compiler may fuse it into one FMA instruction (one rounding) or not (two roundings)
// depending on the flags (-march=native fuses, the sanitizer build does not), and nvcc
// fuses by default. An explicit fma rounds once on every build and on the GPU
// (cuda/random.cu uses fmaf), so the numbers are the same bits everywhere.

// 24 random bits -> a float in [0, 1), every value exactly representable.
static inline float to_unit(uint32_t bits) { return (bits >> 8) * (1.0f / 16777216.0f); }

// Box-Muller: two uniforms u1 in (0, 1], u2 in [0, 1) give two independent normals
//   z0 = sqrt(-2 ln u1) cos(2 pi u2),  z1 = sqrt(-2 ln u1) sin(2 pi u2)
// The block's words (0, 1) make z0, z1 and words (2, 3) make z2, z3.
static std::array<float, 4> box_muller(const std::array<uint32_t, 4>& r) {
    std::array<float, 4> z;
    for (int pair = 0; pair < 2; ++pair) {
        float u1 = 1.0f - to_unit(r[2 * pair]);  // (0, 1]: log stays finite
        float u2 = to_unit(r[2 * pair + 1]);
        float radius = std::sqrt(-2.0f * std::log(u1));
        z[2 * pair] = radius * std::cos(6.283185307179586f * u2);
        z[2 * pair + 1] = radius * std::sin(6.283185307179586f * u2);
    }
    return z;
}

// 16 Philox blocks [first, first + 16) at once: the rounds of philox4x32 (tensor/random.cpp)
// written over arrays of 16 lanes, one block per lane, so that the compiler runs them in
// vector registers (one 32x32 -> 64-bit multiply instruction does 8 blocks' multiplies);
// called block by block, each block is a chain of 10 dependent rounds that leaves most
// of the core idle. The same integer operations: the same bits (tests/test_random_lanes.cpp).
static constexpr int64_t kPhiloxLanes = 16;
static void philox_lanes(uint64_t seed, uint64_t first, uint32_t out[4][kPhiloxLanes]) {
    // Every word is kept in a 64-bit lane (its high half zero), so that the loop is all one
    // width and vectorises: (M * c) is the full 64-bit product, its two halves the new words.
    const uint64_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u, lo32 = 0xFFFFFFFFu;
    uint64_t c0[kPhiloxLanes], c1[kPhiloxLanes], c2[kPhiloxLanes], c3[kPhiloxLanes];
    for (int64_t l = 0; l < kPhiloxLanes; ++l) {  // counter = (block, 0)
        c0[l] = (first + l) & lo32, c1[l] = (first + l) >> 32, c2[l] = 0u, c3[l] = 0u;
    }
    uint64_t k0 = seed & lo32, k1 = seed >> 32;
    for (int round = 0; round < 10; ++round) {
        for (int64_t l = 0; l < kPhiloxLanes; ++l) {
            const uint64_t p0 = M0 * c0[l], p1 = M1 * c2[l];
            c0[l] = (p1 >> 32) ^ c1[l] ^ k0;
            c1[l] = p1 & lo32;
            c2[l] = (p0 >> 32) ^ c3[l] ^ k1;
            c3[l] = p0 & lo32;
        }
        k0 = (k0 + W0) & lo32;
        k1 = (k1 + W1) & lo32;
    }
    for (int64_t l = 0; l < kPhiloxLanes; ++l)
        out[0][l] = uint32_t(c0[l]), out[1][l] = uint32_t(c1[l]), out[2][l] = uint32_t(c2[l]),
        out[3][l] = uint32_t(c3[l]);
}

void CpuBackend::fill_random(const Tensor& dst, Distribution dist, uint64_t seed, uint64_t first_block, float p0,
                             float p1) {
    float* p = dst.data_f32();
    const int64_t n = dst.numel();
    const int64_t blocks = (n + 3) / 4;  // each block yields 4 numbers; the last may be cut short
    if (dist == Distribution::Uniform) {
        const float lo = p0, hi = p1;
        // whole groups of 16 blocks by philox_lanes, the rest block by block
        const int64_t groups = blocks / kPhiloxLanes;
#pragma omp parallel for if (n > kParallelMin)
        for (int64_t grp = 0; grp < groups; ++grp) {
            uint32_t r[4][kPhiloxLanes];
            philox_lanes(seed, first_block + grp * kPhiloxLanes, r);
            for (int64_t l = 0; l < kPhiloxLanes; ++l) {
                const int64_t b = grp * kPhiloxLanes + l;
                for (int64_t j = 0; j < 4 && 4 * b + j < n; ++j) p[4 * b + j] = std::fma(hi - lo, to_unit(r[j][l]), lo);
            }
        }
        for (int64_t b = groups * kPhiloxLanes; b < blocks; ++b) {
            std::array<uint32_t, 4> r = philox_block(seed, first_block + b);
            for (int64_t j = 0; j < 4 && 4 * b + j < n; ++j) p[4 * b + j] = std::fma(hi - lo, to_unit(r[j]), lo);
        }
    } else {
        const float mean = p0, std = p1;
#pragma omp parallel for if (n > kParallelMin)
        for (int64_t b = 0; b < blocks; ++b) {
            std::array<float, 4> z = box_muller(philox_block(seed, first_block + b));
            for (int64_t j = 0; j < 4 && 4 * b + j < n; ++j) p[4 * b + j] = std::fma(std, z[j], mean);
        }
    }
}

}  // namespace td
