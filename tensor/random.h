// tensor/random.h: a counter-based random generator (Philox 4x32-10).
//
// Why counter-based: the n-th random number is a pure function of (seed, n), so a
// tensor of random numbers comes out the same whether one thread or sixteen (or a GPU)
// fill it, and skipping ahead is free. The generator's whole state is (seed, offset):
// two integers that a checkpoint can save. Salmon et al., "Parallel random numbers:
// as easy as 1, 2, 3" (SC 2011).
#pragma once
#include <array>
#include <cstdint>

#include "tensor/tensor.h"

namespace td {

// One Philox 4x32-10 block: 4 random 32-bit words from a 128-bit counter and a 64-bit key.
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);
// Block number `block` of the stream with key `seed`: counter = (block, 0), key = seed.
std::array<uint32_t, 4> philox_block(uint64_t seed, uint64_t block);

class Generator {
public:
    explicit Generator(uint64_t seed = 0) : seed_(seed) {}
    uint64_t seed() const { return seed_; }
    uint64_t offset() const { return offset_; }  // how many 4-word blocks were used
    void set_state(uint64_t seed, uint64_t offset) {
        seed_ = seed;
        offset_ = offset;
    }

    // Reserves `blocks` counter values and returns the first: the caller owns
    // counters [first, first + blocks).
    uint64_t take_blocks(uint64_t blocks) {
        uint64_t first = offset_;
        offset_ += blocks;
        return first;
    }

private:
    uint64_t seed_ = 0;
    uint64_t offset_ = 0;
};

// Uniform in [lo, hi) and normal (Box-Muller), float32, contiguous, made on `device`
// by its backend's fill_random (tensor/backend.h). The numbers depend only on the
// generator's (seed, offset), not on the device: element i comes from block
// offset + i / 4, word i % 4, on the CPU and on the GPU alike (normals may differ in the
// last bits there: the GPU's logf, sinf and cosf round differently from the C library's).
Tensor rand(const Shape& shape, Generator& gen, float lo = 0.0f, float hi = 1.0f, Device device = Device::CPU);
Tensor randn(const Shape& shape, Generator& gen, float mean = 0.0f, float std = 1.0f, Device device = Device::CPU);
// Uniform integers in [0, high), int64, on the CPU only (it serves batch shuffling and
// timestep draws, small host-side tensors; .to(device) moves them).
Tensor randint(int64_t high, const Shape& shape, Generator& gen);

// A generator for code that has none at hand (tests, quick experiments); seeded 0.
Generator& default_generator();

}  // namespace td
