// tensor/cpu/gemm_ladder.h: C = A B three ways, the ladder a CUDA GEMM climbs, run on the CPU.
//
// The engine multiplies matrices with Eigen (tensor/cpu/matmul.cpp). These three are not
// used by it: they are the CPU reference of the CUDA kernels a GPU backend would launch,
// written as the loops the GPU would run, so a student can step through one "thread" in
// gdb and see what it loads and computes:
//
//   for blockIdx.y, blockIdx.x in the grid        (on a GPU: blocks run in parallel on the SMs)
//     for threadIdx.y, threadIdx.x in the block   (on a GPU: threads run in parallel, in warps of 32)
//       the kernel body
//
//   v1 naive             one thread per element of C; each reads a row of A and a column of
//                        B straight from global memory: 2 K loads for K multiply-adds.
//   v2 tiled             a block of TILE x TILE threads computes a TILE x TILE tile of C; it
//                        stages TILE x TILE tiles of A and B in shared memory, so every
//                        element loaded from global memory is used TILE times.
//   v3 register blocked  a block of 16 x 16 threads computes a 128 x 128 tile of C, each thread
//                        an 8 x 8 patch of it held in registers: per element read from shared
//                        memory, 4 multiply-adds instead of v2's half of one.
//
// All three: row-major float32, any M, N, K >= 0 (tiles that hang over the edge of a matrix
// are padded with zeros, as the CUDA kernels do). They run on one CPU thread, in the order
// written: no OpenMP, no intrinsics, so `step` in gdb follows the simulated threads one by
// one. The counts (GemmCounts) are incremented where the loads happen, to show the reuse.
//
// Tested against td::matmul in tests/test_gemm_ladder.cpp (-tc="gemm ladder*"); the lesson
// around them is notebooks-cpp/10-gemm-ladder.cpp. The body of gemm_v2_tiled's tile loop is
// an assignment region (BEGIN / END SOLUTION tiled-gemm). The CUDA kernels these mirror, with
// the same tile shapes, are cuda/matmul.cu's; GPU timings come with that backend.
#pragma once
#include <cstdint>

#include "tensor/tensor.h"

namespace td {

// What a kernel did, counted as it ran (all zeros when not asked for).
struct GemmCounts {
    int64_t global_loads_a = 0;  // elements of A read from global memory (DRAM on a GPU)
    int64_t global_loads_b = 0;  // elements of B read from global memory
    int64_t global_stores = 0;   // elements of C written
    int64_t shared_loads = 0;    // reads from the block's shared-memory tiles (0 in v1: it has none)
    int64_t fmas = 0;            // multiply-adds, the zero padding of edge tiles included
    int64_t global_loads() const { return global_loads_a + global_loads_b; }
};

// v3's shapes (those of the CUDA twin): a block computes a kBM x kBN tile of C, one K-slice
// of kBK at a time; each of its (kBM / kTM) x (kBN / kTN) = 16 x 16 threads owns a kTM x kTN
// patch of that tile, split into 4-wide pieces (so kTM = kTN = 8 is assumed).
constexpr int64_t kBM = 128, kBN = 128, kBK = 8, kTM = 8, kTN = 8;
constexpr int64_t kV3Threads = (kBM / kTM) * (kBN / kTN);  // 256 threads per block

// The kernels on raw row-major buffers: A (M, K), B (K, N), C (M, N), as a CUDA kernel is
// called. C is overwritten. counts may be null. tile (v2): 1 <= tile <= 32 (a CUDA block has
// at most 1,024 threads), 16 or 32 in practice; any other value throws td::Error.
void gemm_v1_naive(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K, GemmCounts* counts);
void gemm_v2_tiled(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K, int64_t tile,
                   GemmCounts* counts);
void gemm_v3_register_blocked(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K,
                              GemmCounts* counts);

// The same on tensors: A (M, K) @ B (K, N) -> a new (M, N), any layout (made contiguous
// first). Throws td::Error naming the function and both shapes when A and B are not 2-D
// float32 matrices with A's columns equal to B's rows.
Tensor gemm_v1_naive(const Tensor& A, const Tensor& B, GemmCounts* counts = nullptr);
Tensor gemm_v2_tiled(const Tensor& A, const Tensor& B, int64_t tile = 32, GemmCounts* counts = nullptr);
Tensor gemm_v3_register_blocked(const Tensor& A, const Tensor& B, GemmCounts* counts = nullptr);

}  // namespace td
