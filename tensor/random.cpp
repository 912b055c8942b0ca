// tensor/random.cpp: Philox 4x32-10 and the random tensors built on it.
#include "tensor/random.h"

#include "tensor/backend.h"
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
std::array<uint32_t, 4> philox_block(uint64_t seed, uint64_t block) {
    return philox4x32({uint32_t(block), uint32_t(block >> 32), 0u, 0u}, {uint32_t(seed), uint32_t(seed >> 32)});
}

// rand and randn reserve the blocks their numbers need (4 numbers per block) and let the
// backend of `device` compute them: tensor/cpu/random.cpp is the reference, with the
// uniform mapping and Box-Muller; cuda/random.cu gives the same numbers on the GPU.
static Tensor random_tensor(const Shape& shape, Generator& gen, Backend::Distribution dist, float p0, float p1,
                            Device device) {
    Tensor t = Tensor::empty(shape, DType::Float32, device);
    uint64_t blocks = (uint64_t)(t.numel() + 3) / 4;
    uint64_t first = gen.take_blocks(blocks);
    if (t.numel() > 0) backend_for(device).fill_random(t, dist, gen.seed(), first, p0, p1);
    return t;
}

Tensor rand(const Shape& shape, Generator& gen, float lo, float hi, Device device) {
    return random_tensor(shape, gen, Backend::Distribution::Uniform, lo, hi, device);
}

// Normals by Box-Muller on each block's word pairs: z0 = sqrt(-2 ln u1) cos(2 pi u2),
// z1 = sqrt(-2 ln u1) sin(2 pi u2) (written out in tensor/cpu/random.cpp).
Tensor randn(const Shape& shape, Generator& gen, float mean, float std, Device device) {
    return random_tensor(shape, gen, Backend::Distribution::Normal, mean, std, device);
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
