// cuda/cuda_check.h: CUDA runtime errors become td::Error naming the kernel or call.
//
// Every CUDA call returns a cudaError_t; a kernel launch reports through
// cudaGetLastError() right after it (a bad launch configuration) and, for faults inside
// the kernel, at the next synchronising call. The engine checks after every launch, so
// the message names the kernel that failed rather than some later innocent call.
#pragma once
#include <cuda_runtime.h>

#include "tensor/error.h"

namespace td::cuda {

inline void check_cuda(cudaError_t err, const char* what) {
    if (err != cudaSuccess)
        fail("CUDA error in ", what, ": ", cudaGetErrorString(err), " (", cudaGetErrorName(err), ")");
}

// After a kernel launch: `kernel` is its name as the message should show it.
inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel); }

// Blocks of `threads` threads covering n work items.
inline unsigned blocks_for(int64_t n, int threads) { return (unsigned)((n + threads - 1) / threads); }

// Blocks for a grid-stride loop over n items: one thread per item up to `max_blocks` blocks,
// at least one block. Why a cap: past a few blocks per SM the GPU is full anyway, and each
// thread's loop (i += gridDim.x * blockDim.x) then covers the rest with fewer launches' worth
// of block scheduling.
inline unsigned grid_stride_blocks(int64_t n, int threads, unsigned max_blocks = 8192) {
    unsigned b = blocks_for(n, threads);
    return b == 0 ? 1 : (b < max_blocks ? b : max_blocks);
}

}  // namespace td::cuda
