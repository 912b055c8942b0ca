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

void CpuBackend::fill_random(const Tensor& dst, Distribution dist, uint64_t seed, uint64_t first_block, float p0,
                             float p1) {
    float* p = dst.data_f32();
    const int64_t n = dst.numel();
    const int64_t blocks = (n + 3) / 4;  // each block yields 4 numbers; the last may be cut short
    if (dist == Distribution::Uniform) {
        const float lo = p0, hi = p1;
#pragma omp parallel for if (n > kParallelMin)
        for (int64_t b = 0; b < blocks; ++b) {
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
