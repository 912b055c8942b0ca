// cuda/random.cu: fill_random on the GPU, the twin of tensor/cpu/random.cpp: the same
// Philox 4x32-10 blocks, the same mapping of words to elements, the same Box-Muller.
//
// A counter-based generator is what makes this easy: block b is a pure function of
// (seed, first_block + b), so thread b computes it with no state shared with any other
// thread, and the numbers are the CPU's, element for element.
//
// The kernel: one thread per Philox block, i.e. per 4 consecutive elements 4b .. 4b + 3
// of dst (fewer in the last block when numel % 4 != 0), in a grid-stride loop over the
// blocks. One block of 10 rounds yields exactly 4 words and Box-Muller pairs words
// (0, 1) and (2, 3) of the same block, so 4 elements is the natural unit of work; a warp
// then writes 32 x 16 = 512 consecutive bytes.
//
// Uniforms come out bit for bit equal to the CPU's (an integer hash, one exact scaling and
// one multiply-add). Normals go through logf, sqrtf, cosf and sinf, whose CUDA versions
// are accurate to 1-2 units in the last place but do not round exactly as the C library
// does, so they can differ from the CPU's in the last bits.
#include <cstdint>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"

namespace td {

namespace {

constexpr int kThreads = 256;  // 8 warps per block

struct Words {
    uint32_t w[4];
};

// Philox 4x32-10, as tensor/random.cpp's philox4x32: ten rounds of two 32x32 -> 64-bit
// multiplies, swaps and xors with the key; the key is bumped by two Weyl constants each
// round. __umulhi gives the high 32 bits of the product, the low 32 bits are the plain
// (wrapping) 32-bit product.
__device__ Words philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
        uint32_t hi0 = __umulhi(M0, c0), lo0 = M0 * c0;
        uint32_t hi1 = __umulhi(M1, c2), lo1 = M1 * c2;
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += W0;
        k1 += W1;
    }
    return {{c0, c1, c2, c3}};
}

// 24 random bits -> a float in [0, 1), every value exactly representable.
__device__ float to_unit(uint32_t bits) { return (bits >> 8) * (1.0f / 16777216.0f); }

// Thread b: Philox block first_block + b (counter = block number, key = seed), elements
// 4b .. min(4b + 4, n) - 1 of dst. normal = false: uniform in [p0, p1); true: p0 + p1 z.
__global__ void fill_random_kernel(float* dst, int64_t n, bool normal, uint64_t seed, uint64_t first_block, float p0,
                                   float p1) {
    const int64_t blocks = (n + 3) / 4;
    for (int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; b < blocks; b += (int64_t)gridDim.x * blockDim.x) {
        const uint64_t block = first_block + (uint64_t)b;
        Words r = philox4x32(uint32_t(block), uint32_t(block >> 32), 0u, 0u, uint32_t(seed), uint32_t(seed >> 32));
        float out[4];
        if (!normal) {
            for (int j = 0; j < 4; ++j)
                out[j] = fmaf(p1 - p0, to_unit(r.w[j]), p0);  // one rounding, as the CPU's std::fma
        } else {
            // Box-Muller: z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2)
            for (int pair = 0; pair < 2; ++pair) {
                float u1 = 1.0f - to_unit(r.w[2 * pair]);  // (0, 1]: log stays finite
                float u2 = to_unit(r.w[2 * pair + 1]);
                float radius = sqrtf(-2.0f * logf(u1));
                out[2 * pair] = fmaf(p1, radius * cosf(6.283185307179586f * u2), p0);
                out[2 * pair + 1] = fmaf(p1, radius * sinf(6.283185307179586f * u2), p0);
            }
        }
        for (int j = 0; j < 4; ++j)
            if (4 * b + j < n) dst[4 * b + j] = out[j];
    }
}

}  // namespace

void CudaBackend::fill_random(const Tensor& dst, Distribution dist, uint64_t seed, uint64_t first_block, float p0,
                              float p1) {
    check(dst.device() == Device::CUDA && dst.dtype() == DType::Float32 && dst.is_contiguous(),
          "fill_random (cuda): dst must be a contiguous float32 tensor on cuda");
    const int64_t n = dst.numel();
    if (n == 0) return;
    unsigned grid = cuda::grid_stride_blocks((n + 3) / 4, kThreads);  // a thread per Philox block
    fill_random_kernel<<<grid, kThreads>>>(dst.data_f32(), n, dist == Distribution::Normal, seed, first_block, p0, p1);
    cuda::check_launch("fill_random_kernel");
}

}  // namespace td
