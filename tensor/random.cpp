// tensor/random.cpp: Philox 4x32-10 and the random tensors built on it.
#include "tensor/random.h"

#include <cmath>

#include "tensor/error.h"

namespace td {

// Ten rounds of: two 32x32 -> 64-bit multiplies, swaps and xors with the key; the key
// is bumped by two "Weyl" constants each round. Constants from Salmon et al. 2011.
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
        uint64_t p0 = (uint64_t)M0 * c[0];
        uint64_t p1 = (uint64_t)M1 * c[2];
        c = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1], uint32_t(p0)};
        k[0] += W0;
        k[1] += W1;
    }
    return c;
}

// Block number `block` of generator (seed): the counter is the block number, the key the seed.
static std::array<uint32_t, 4> philox_block(uint64_t seed, uint64_t block) {
    return philox4x32({uint32_t(block), uint32_t(block >> 32), 0u, 0u}, {uint32_t(seed), uint32_t(seed >> 32)});
}

// 24 random bits -> a float in [0, 1), every value exactly representable.
static inline float to_unit(uint32_t bits) { return (bits >> 8) * (1.0f / 16777216.0f); }

Tensor rand(const Shape& shape, Generator& gen, float lo, float hi) {
    Tensor t = Tensor::empty(shape);
    float* p = t.data_f32();
    int64_t n = t.numel();
    int64_t blocks = (n + 3) / 4;  // each block yields 4 numbers
    uint64_t first = gen.take_blocks(blocks), seed = gen.seed();
#pragma omp parallel for if (n > 65536)
    for (int64_t b = 0; b < blocks; ++b) {
        std::array<uint32_t, 4> r = philox_block(seed, first + b);
        for (int64_t j = 0; j < 4 && 4 * b + j < n; ++j) p[4 * b + j] = lo + (hi - lo) * to_unit(r[j]);
    }
    return t;
}

// Box-Muller: two uniforms u1 in (0, 1], u2 in [0, 1) give two independent normals
//   z0 = sqrt(-2 ln u1) cos(2 pi u2),  z1 = sqrt(-2 ln u1) sin(2 pi u2)
Tensor randn(const Shape& shape, Generator& gen, float mean, float std) {
    Tensor t = Tensor::empty(shape);
    float* p = t.data_f32();
    int64_t n = t.numel();
    int64_t blocks = (n + 3) / 4;
    uint64_t first = gen.take_blocks(blocks), seed = gen.seed();
#pragma omp parallel for if (n > 65536)
    for (int64_t b = 0; b < blocks; ++b) {
        std::array<uint32_t, 4> r = philox_block(seed, first + b);
        float z[4];
        for (int pair = 0; pair < 2; ++pair) {
            float u1 = 1.0f - to_unit(r[2 * pair]);  // (0, 1]: log stays finite
            float u2 = to_unit(r[2 * pair + 1]);
            float radius = std::sqrt(-2.0f * std::log(u1));
            z[2 * pair] = radius * std::cos(6.283185307179586f * u2);
            z[2 * pair + 1] = radius * std::sin(6.283185307179586f * u2);
        }
        for (int64_t j = 0; j < 4 && 4 * b + j < n; ++j) p[4 * b + j] = mean + std * z[j];
    }
    return t;
}

Tensor randint(int64_t high, const Shape& shape, Generator& gen) {
    check(high > 0, "randint: high must be positive, got ", high);
    Tensor t = Tensor::empty(shape, DType::Int64);
    int64_t* p = t.data_i64();
    int64_t n = t.numel();
    int64_t blocks = (n + 1) / 2;  // two 64-bit draws per block
    uint64_t first = gen.take_blocks(blocks), seed = gen.seed();
    for (int64_t b = 0; b < blocks; ++b) {
        std::array<uint32_t, 4> r = philox_block(seed, first + b);
        for (int64_t j = 0; j < 2 && 2 * b + j < n; ++j) {
            uint64_t v = ((uint64_t)r[2 * j] << 32) | r[2 * j + 1];
            p[2 * b + j] = (int64_t)(v % (uint64_t)high);  // bias < high / 2^64: negligible
        }
    }
    return t;
}

Generator& default_generator() {
    static Generator gen(0);
    return gen;
}

}  // namespace td
