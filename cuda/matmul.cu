// cuda/matmul.cu: the GEMM ladder (cuda/gemm.h) and CudaBackend::matmul. Twin of
// tensor/cpu/matmul.cpp (what is computed) and tensor/cpu/gemm_ladder.cpp (the same
// kernels written as CPU loops over "threads", to step through in gdb).
//
// Four kernels compute the same thing, each kept so a student can read them in order:
//   v1 gemm_v1_naive              one thread per element of C, straight from global memory
//   v2 gemm_v2_tiled              32 x 32 tiles of A and B staged in shared memory
//   v3 gemm_v3_register_blocked   128 x 128 block tiles, an 8 x 8 patch of C per thread in registers
//   v4 gemm_v4_tensor_core_tf32   tensor cores (WMMA, TF32 inputs, FP32 sums)
// gemm() uses v3 (exact FP32), or v4 when the environment says TD_CUDA_TF32=1.
// Benchmark: bench/cuda_gemm.cu (run by `make gpu-check`): every rung side by side, cuBLAS
// as the yardstick; each kernel below names its row.
//
// What each computes, for b < batch (cuda/gemm.h): C_b = op(A_b) op(B_b) + beta C_b. The
// transposes cost nothing: they only change which element of the stored matrix a thread
// loads (load_op below) and, in v2-v4, which thread loads it, so a warp always reads
// consecutive addresses whichever way A and B are stored.
//
// The grid, in every kernel: x over N's tiles, y over M's tiles, z over the batch. y and z
// are capped at 65,535 by the hardware, so a larger M or batch is covered by several
// launches, each told its first row and first matrix (launch_tiles). Every kernel reads
// out-of-range elements of A and B as zeros (which add nothing) and writes only the
// elements of C inside the matrix, so any M, N, K >= 0 works; K = 0 gives C = beta C.
#include <mma.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/gemm.h"
#include "tensor/error.h"

namespace td::cuda {

namespace {

// Everything a kernel needs to know about one gemm() call (passed by value: it lands in
// the kernel's constant parameter space, no allocation).
struct GemmArgs {
    bool trans_a, trans_b;
    int64_t M, N, K;
    const float* A;
    int64_t lda, stride_a;
    const float* B;
    int64_t ldb, stride_b;
    float* C;
    int64_t ldc, stride_c;
    float beta;
};

// Element (r, c) of op(X), an R x C matrix (X itself is stored R x C, or C x R when
// transposed), or 0 outside it: the zero padding of the tiles that hang over an edge.
__device__ __forceinline__ float load_op(const float* X, int64_t ld, bool trans, int64_t r, int64_t c, int64_t R,
                                         int64_t C) {
    if (r >= R || c >= C) return 0.0f;
    return trans ? X[c * ld + r] : X[r * ld + c];
}

// C[row, col] = acc + beta C[row, col]; with beta = 0, C is never read (it may hold NaN).
__device__ __forceinline__ void store_c(const GemmArgs& g, float* C, int64_t row, int64_t col, float acc) {
    if (row >= g.M || col >= g.N) return;
    float* c = C + row * g.ldc + col;
    *c = g.beta == 0.0f ? acc : acc + g.beta * *c;
}

// ---- v1: one thread per element of C ----------------------------------------------------
//
// Launch: blocks of 16 x 16 threads, grid (ceil(N / 16), ceil(M / 16), batch). Thread
// (ty, tx) of block (bx, by, bz) computes C_b[row, col] with row = by * 16 + ty,
// col = bx * 16 + tx: a dot product of length K, every operand read from global memory.
// threadIdx.x walks the columns so that the 16 threads of a half-warp read op(B)[k, col ..
// col + 15] together; with B stored untransposed those are consecutive addresses (one
// transaction), and they all read the same op(A)[row, k] (one broadcast). Nothing is
// shared between threads: 2 loads per multiply-add, 2 M N K loads in all (the L1 and L2
// caches catch many of them, which is all that keeps v1 from being slower still).
// Benchmark: bench/cuda_gemm.cu, row v1.
constexpr int kV1Block = 16;

__global__ void __launch_bounds__(kV1Block* kV1Block) gemm_v1_naive(GemmArgs g, int64_t m_first, int64_t b_first) {
    const int64_t b = b_first + blockIdx.z;
    const int64_t row = m_first + (int64_t)blockIdx.y * kV1Block + threadIdx.y;
    const int64_t col = (int64_t)blockIdx.x * kV1Block + threadIdx.x;
    if (row >= g.M || col >= g.N) return;  // the edge blocks' spare threads (no barrier follows)
    const float* A = g.A + b * g.stride_a;
    const float* B = g.B + b * g.stride_b;
    float acc = 0.0f;
    for (int64_t k = 0; k < g.K; ++k)
        acc += load_op(A, g.lda, g.trans_a, row, k, g.M, g.K) * load_op(B, g.ldb, g.trans_b, k, col, g.K, g.N);
    store_c(g, g.C + b * g.stride_c, row, col, acc);
}

// ---- v2: shared-memory tiles ------------------------------------------------------------
//
// Launch: blocks of 32 x 32 threads, grid (ceil(N / 32), ceil(M / 32), batch). Thread
// (ty, tx) computes C_b[row, col], row = by * 32 + ty, col = bx * 32 + tx, as in v1; but the
// block walks K in slices of 32: it stages the 32 x 32 tile of op(A) (its rows, the slice)
// and of op(B) (the slice, its columns) in shared memory, then each thread does 32
// multiply-adds out of shared memory. Each element loaded from global memory is used by
// 32 threads: 32 times fewer global loads than v1.
//
// Who loads what: every thread loads one element of each tile per slice. A warp is one
// value of ty and tx = 0..31; it must read 32 consecutive addresses (coalesced). So for A
// stored M x K, thread (ty, tx) loads A[row0 + ty, k0 + tx] into As[ty][tx]; for A stored
// transposed (K x M, consecutive addresses run along M) it loads A[k0 + ty, row0 + tx],
// which is op(A)[row0 + tx, k0 + ty], into As[tx][ty]. B likewise, mirrored.
//
// Why 33 columns: shared memory has 32 banks, one 4-byte word each; a warp's 32 accesses
// finish in one cycle only when they fall in 32 different banks. The transposed store
// As[tx][ty] writes one column: with 32 floats per row all 32 addresses would be in the
// same bank (32 cycles); with 33, row tx starts one bank further on, and the column spans
// all 32. The reads in the product loop are conflict-free either way: As[ty][k] is one
// address for the whole warp (a broadcast), Bs[k][tx] 32 consecutive words.
//
// Why 32 x 32: a warp is then exactly one tile row (the story above), 1,024 threads is the
// most a block may have, and the two tiles take 2 x 32 x 33 x 4 = 8.4 KB of shared memory.
// Benchmark: bench/cuda_gemm.cu, row v2.
constexpr int kV2Tile = 32;

__global__ void __launch_bounds__(kV2Tile* kV2Tile) gemm_v2_tiled(GemmArgs g, int64_t m_first, int64_t b_first) {
    __shared__ float As[kV2Tile][kV2Tile + 1];  // As[i][k] = op(A)[row0 + i, k0 + k]
    __shared__ float Bs[kV2Tile][kV2Tile + 1];  // Bs[k][j] = op(B)[k0 + k, col0 + j]
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int64_t b = b_first + blockIdx.z;
    const int64_t row0 = m_first + (int64_t)blockIdx.y * kV2Tile, col0 = (int64_t)blockIdx.x * kV2Tile;
    const float* A = g.A + b * g.stride_a;
    const float* B = g.B + b * g.stride_b;
    float acc = 0.0f;
    // Every thread runs every slice, also those whose (row, col) lies outside C: they load
    // their share of the tiles and must reach both barriers.
    // BEGIN HIDE tiled-gemm
    // STUB: (void)A, (void)B, (void)As, (void)Bs;  // (left out of this copy: the assignment tiled-gemm)
    for (int64_t k0 = 0; k0 < g.K; k0 += kV2Tile) {
        if (g.trans_a) As[tx][ty] = load_op(A, g.lda, true, row0 + tx, k0 + ty, g.M, g.K);
        else As[ty][tx] = load_op(A, g.lda, false, row0 + ty, k0 + tx, g.M, g.K);
        if (g.trans_b) Bs[tx][ty] = load_op(B, g.ldb, true, k0 + tx, col0 + ty, g.K, g.N);
        else Bs[ty][tx] = load_op(B, g.ldb, false, k0 + ty, col0 + tx, g.K, g.N);
        __syncthreads();  // both tiles are complete before anyone reads them
#pragma unroll 8
        for (int k = 0; k < kV2Tile; ++k) acc += As[ty][k] * Bs[k][tx];
        __syncthreads();  // nobody overwrites the tiles while another thread still reads them
    }
    // END HIDE tiled-gemm
    store_c(g, g.C + b * g.stride_c, row0 + ty, col0 + tx, acc);
}

// ---- v3: an 8 x 8 patch of C per thread, in registers --------------------------------------
//
// v2 does one multiply-add per two shared-memory reads. Shared memory delivers 32 words
// per cycle per SM, the FMA units do 128 multiply-adds: at two words each, v2 can keep at
// most an eighth of them busy. v3 gives each thread 64 outputs: per step k of the slice it
// reads 8 values of op(A)'s tile column and 8 of op(B)'s tile row into registers (as four
// float4 reads) and does all 8 x 8 products: 64 multiply-adds per 16 words, 4 per word,
// which shared memory can feed at the FMA units' full rate.
//
// Launch: blocks of 256 threads, grid (ceil(N / 128), ceil(M / 128), batch). The block owns
// a 128 x 128 tile of C and walks K in slices of 8. Thread t = 16 ty + tx owns rows
// ty * 4 + [0, 4) and 64 + ty * 4 + [0, 4) of the tile, and columns tx * 4 + [0, 4) and
// 64 + tx * 4 + [0, 4): an 8 x 8 patch in four 4 x 4 pieces, 64 apart. Why split it: a
// float4 read is served 8 threads at a time; threads tx = 0..7 reading Bs[k][tx * 4 ..]
// touch words 0, 4, ..., 28 (+0..3): all 32 banks, once. A contiguous patch (tx * 8) would
// put tx and tx + 4 on the same banks (2 cycles instead of 1). As[k][ty * 4 ..] is the same
// address for the 16 threads of one ty (a broadcast).
//
// The tiles are stored k-major, As[k][m] and Bs[k][n], so that a thread's 4 consecutive m
// (or n) are one aligned float4. Staging: 1,024 elements of each tile per slice, 4 per
// thread. Consecutive threads take consecutive addresses of the matrix as stored: for A
// stored M x K, t -> (m = t / 8 + 32 p, k = t % 8), a warp reading 4 rows of 8 floats (four
// full 32-byte sectors); transposed, t -> (m = t % 128, k = t / 128 + 2 p), 32 consecutive
// floats. The first way stores into As[k][m] with k = 0..7 and 4 values of m per warp: with
// rows of 128 words those would meet in 4 banks; the 4 words of padding per row shift row k
// by 4 k banks, and the 32 stores spread over all 32. B mirrored.
//
// Why 128 x 128 x 8: the block loads (128 + 128) x 8 floats per slice for 128 x 128 x 8
// multiply-adds, 64 per float loaded from global memory; the tiles take 8.4 KB, so several
// blocks fit on an SM; 64 accumulators + 16 operands per thread stay below 128 registers
// (2 blocks of 256 threads per SM). The register arrays are indexed only by fully unrolled
// loops: with a run-time index they would live in (slow, local) memory instead.
// Benchmark: bench/cuda_gemm.cu, row v3.
constexpr int kV3BM = 128, kV3BN = 128, kV3BK = 8;             // block tile, K-slice
constexpr int kV3TM = 8, kV3TN = 8;                            // a thread's patch
constexpr int kV3Threads = (kV3BM / kV3TM) * (kV3BN / kV3TN);  // 16 x 16 = 256
constexpr int kV3Pad = 4;                                      // words of padding per tile row
// The staging maps and the float4 reads assume these; change the tile and they say so.
static_assert(kV3TM == 8 && kV3TN == 8, "v3_row / v3_col split a patch into two 4-wide pieces");
static_assert(kV3BM * kV3BK % kV3Threads == 0 && kV3Threads % kV3BM == 0 && kV3Threads % kV3BK == 0 &&
                  kV3BN * kV3BK % kV3Threads == 0 && kV3Threads % kV3BN == 0,
              "each thread stages the same number of tile elements");

// Row of the block tile (0..127) held in register row i (0..7) of thread row ty, and the
// same for columns: two 4-wide pieces, half a tile apart.
__device__ __forceinline__ int v3_row(int ty, int i) { return (i < 4 ? 0 : kV3BM / 2) + ty * 4 + i % 4; }
__device__ __forceinline__ int v3_col(int tx, int j) { return (j < 4 ? 0 : kV3BN / 2) + tx * 4 + j % 4; }

__global__ void __launch_bounds__(kV3Threads) gemm_v3_register_blocked(GemmArgs g, int64_t m_first, int64_t b_first) {
    __shared__ __align__(16) float As[kV3BK][kV3BM + kV3Pad];  // As[k][i] = op(A)[row0 + i, k0 + k]
    __shared__ __align__(16) float Bs[kV3BK][kV3BN + kV3Pad];  // Bs[k][j] = op(B)[k0 + k, col0 + j]
    const int t = threadIdx.x, tx = t % (kV3BN / kV3TN), ty = t / (kV3BN / kV3TN);
    const int64_t b = b_first + blockIdx.z;
    const int64_t row0 = m_first + (int64_t)blockIdx.y * kV3BM, col0 = (int64_t)blockIdx.x * kV3BN;
    const float* A = g.A + b * g.stride_a;
    const float* B = g.B + b * g.stride_b;

    float acc[kV3TM][kV3TN];
#pragma unroll
    for (int i = 0; i < kV3TM; ++i)
#pragma unroll
        for (int j = 0; j < kV3TN; ++j) acc[i][j] = 0.0f;

    for (int64_t k0 = 0; k0 < g.K; k0 += kV3BK) {
        // Stage the slice: 4 elements of each tile per thread (see the header for the maps).
#pragma unroll
        for (int p = 0; p < kV3BM * kV3BK / kV3Threads; ++p) {
            int i = g.trans_a ? t % kV3BM : t / kV3BK + (kV3Threads / kV3BK) * p;
            int k = g.trans_a ? t / kV3BM + (kV3Threads / kV3BM) * p : t % kV3BK;
            As[k][i] = load_op(A, g.lda, g.trans_a, row0 + i, k0 + k, g.M, g.K);
        }
#pragma unroll
        for (int p = 0; p < kV3BK * kV3BN / kV3Threads; ++p) {
            int j = g.trans_b ? t / kV3BK + (kV3Threads / kV3BK) * p : t % kV3BN;
            int k = g.trans_b ? t % kV3BK : t / kV3BN + (kV3Threads / kV3BN) * p;
            Bs[k][j] = load_op(B, g.ldb, g.trans_b, k0 + k, col0 + j, g.K, g.N);
        }
        __syncthreads();  // the slice is complete before anyone reads it

#pragma unroll
        for (int k = 0; k < kV3BK; ++k) {
            // This thread's column of op(A)'s tile and row of op(B)'s tile: four float4 reads.
            float4 a_lo = *reinterpret_cast<const float4*>(&As[k][v3_row(ty, 0)]);
            float4 a_hi = *reinterpret_cast<const float4*>(&As[k][v3_row(ty, 4)]);
            float4 b_lo = *reinterpret_cast<const float4*>(&Bs[k][v3_col(tx, 0)]);
            float4 b_hi = *reinterpret_cast<const float4*>(&Bs[k][v3_col(tx, 4)]);
            const float a[kV3TM] = {a_lo.x, a_lo.y, a_lo.z, a_lo.w, a_hi.x, a_hi.y, a_hi.z, a_hi.w};
            const float bv[kV3TN] = {b_lo.x, b_lo.y, b_lo.z, b_lo.w, b_hi.x, b_hi.y, b_hi.z, b_hi.w};
            // the outer product a bv^T: 64 multiply-adds from 16 registers
#pragma unroll
            for (int i = 0; i < kV3TM; ++i)
#pragma unroll
                for (int j = 0; j < kV3TN; ++j) acc[i][j] += a[i] * bv[j];
        }
        __syncthreads();  // nobody stages the next slice while another thread still reads this one
    }

    float* C = g.C + b * g.stride_c;
#pragma unroll
    for (int i = 0; i < kV3TM; ++i)
#pragma unroll
        for (int j = 0; j < kV3TN; ++j) store_c(g, C, row0 + v3_row(ty, i), col0 + v3_col(tx, j), acc[i][j]);
}

// ---- v4: tensor cores, TF32 inputs, FP32 sums --------------------------------------------
//
// A tensor core multiplies small matrices in one warp-wide instruction. Through the WMMA
// API (nvcuda::wmma) a warp holds "fragments": a 16 x 8 piece of op(A), an 8 x 16 piece of
// op(B) and a 16 x 16 accumulator, spread over its 32 threads in a layout the hardware
// chooses (no thread owns a known element; the warp owns the fragment). mma_sync does
// acc += a b for the whole 16 x 16 x 8 product at once. The inputs are TF32: float32 with
// its mantissa rounded from 23 bits to 10 (wmma::__float_to_tf32), so each input carries a
// relative error up to 2^-11 (5e-4), and a product's error is about 1e-3 of the sum of
// |a_ik b_kj| (the accumulation stays FP32). Hence opt-in only: TD_CUDA_TF32=1, as
// PyTorch's torch.backends.cuda.matmul.allow_tf32.
//
// Launch: blocks of 256 threads (8 warps), grid (ceil(N / 64), ceil(M / 128), batch). The
// block owns a 128 x 64 tile of C and walks K in slices of 16. The warps form a 4 x 2 grid;
// warp w = 2 wm + wn owns the 32 x 32 piece of the tile at rows wm * 32, columns wn * 32:
// 2 x 2 accumulator fragments (32 registers per thread). Per 8-wide step of the slice it
// loads 2 A fragments and 2 B fragments from shared memory and does 4 mma_sync.
//
// Why 128 x 64 and 32 x 32 per warp: the block still loads (128 + 64) x 16 floats per slice
// for 128 x 64 x 16 multiply-adds (43 per float), and a thread fits in 128 registers
// without spilling, so 2 blocks (16 warps; __launch_bounds__(256, 2) holds ptxas to that)
// share an SM and hide each other's waits for global memory (this kernel has no
// asynchronous copies). A 128 x 128 tile with 64 x 32 per warp doubled the accumulators
// and spilled at 128 registers; squeezing this one to 3 blocks (85 registers) spilled on
// sm_80.
//
// Staging, as in v3: 2,048 elements of op(A)'s tile and 1,024 of op(B)'s per slice, 8 and
// 4 per thread, consecutive threads on consecutive addresses of the matrix as stored; each
// value is rounded to TF32 once, here, rather than once per warp that loads it. The tiles
// are As[i][k] and Bs[k][j] (row-major, the layout load_matrix_sync is told): a fragment's
// pointer must be 32-byte aligned and its row length (ldm) a multiple of 4 floats. 16 + 4
// and 64 + 4 are: the 4 words of padding make rows start 4 banks apart, which spreads the
// fragment loads (and the transposed stores of staging) over more banks.
//
// Store: a fragment's elements sit in unknown threads, so each warp stores one fragment at
// a time into its own 16 x 16 scratch in shared memory, then its 32 lanes write that to C
// (bounds-checked, beta applied), 8 elements each, two rows of 16 per instruction.
// Shared memory: As 10 KB + Bs 4.3 KB + scratch 10 KB.
// Benchmark: bench/cuda_gemm.cu, row v4 (against cuBLAS with TF32 allowed).
namespace wmma = nvcuda::wmma;
constexpr int kV4BM = 128, kV4BN = 64, kV4BK = 16;                   // block tile, K-slice
constexpr int kV4WarpsM = 4, kV4WarpsN = 2;                          // 8 warps, 4 x 2
constexpr int kV4WM = kV4BM / kV4WarpsM;                             // 32 rows per warp
constexpr int kV4WN = kV4BN / kV4WarpsN;                             // 32 columns per warp
constexpr int kFrag = 16, kFragK = 8;                                // wmma m16n16k8, the TF32 shape
constexpr int kV4FragsM = kV4WM / kFrag, kV4FragsN = kV4WN / kFrag;  // 2 x 2 fragments per warp
constexpr int kV4Threads = 32 * kV4WarpsM * kV4WarpsN;               // 256
constexpr int kV4Pad = 4;
static_assert(kV4BK % kFragK == 0 && kV4WM % kFrag == 0 && kV4WN % kFrag == 0, "warp pieces are whole fragments");
static_assert(kV4BM * kV4BK % kV4Threads == 0 && kV4Threads % kV4BM == 0 && kV4Threads % kV4BK == 0 &&
                  kV4BN * kV4BK % kV4Threads == 0 && kV4Threads % kV4BN == 0,
              "each thread stages the same number of tile elements");
static_assert((kV4BK + kV4Pad) % 4 == 0 && (kV4BN + kV4Pad) % 4 == 0 && (kFrag + kV4Pad) % 4 == 0,
              "load_matrix_sync / store_matrix_sync need ldm to be a multiple of 4 floats");

__global__ void __launch_bounds__(kV4Threads, 2)
    gemm_v4_tensor_core_tf32(GemmArgs g, int64_t m_first, int64_t b_first) {
    __shared__ __align__(32) float As[kV4BM][kV4BK + kV4Pad];  // As[i][k] = tf32(op(A)[row0 + i, k0 + k])
    __shared__ __align__(32) float Bs[kV4BK][kV4BN + kV4Pad];  // Bs[k][j] = tf32(op(B)[k0 + k, col0 + j])
    __shared__ __align__(32) float Cs[kV4WarpsM * kV4WarpsN][kFrag][kFrag + kV4Pad];  // one scratch per warp
    const int t = threadIdx.x, warp = t / 32, lane = t % 32;
    const int wm = warp / kV4WarpsN, wn = warp % kV4WarpsN;
    const int64_t b = b_first + blockIdx.z;
    const int64_t row0 = m_first + (int64_t)blockIdx.y * kV4BM, col0 = (int64_t)blockIdx.x * kV4BN;
    const float* A = g.A + b * g.stride_a;
    const float* B = g.B + b * g.stride_b;

    wmma::fragment<wmma::accumulator, kFrag, kFrag, kFragK, float> acc[kV4FragsM][kV4FragsN];
#pragma unroll
    for (int i = 0; i < kV4FragsM; ++i)
#pragma unroll
        for (int j = 0; j < kV4FragsN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    for (int64_t k0 = 0; k0 < g.K; k0 += kV4BK) {
#pragma unroll
        for (int p = 0; p < kV4BM * kV4BK / kV4Threads; ++p) {
            int i = g.trans_a ? t % kV4BM : t / kV4BK + (kV4Threads / kV4BK) * p;
            int k = g.trans_a ? t / kV4BM + (kV4Threads / kV4BM) * p : t % kV4BK;
            As[i][k] = wmma::__float_to_tf32(load_op(A, g.lda, g.trans_a, row0 + i, k0 + k, g.M, g.K));
        }
#pragma unroll
        for (int p = 0; p < kV4BK * kV4BN / kV4Threads; ++p) {
            int j = g.trans_b ? t / kV4BK + (kV4Threads / kV4BK) * p : t % kV4BN;
            int k = g.trans_b ? t % kV4BK : t / kV4BN + (kV4Threads / kV4BN) * p;
            Bs[k][j] = wmma::__float_to_tf32(load_op(B, g.ldb, g.trans_b, k0 + k, col0 + j, g.K, g.N));
        }
        __syncthreads();  // the slice is complete before any warp loads a fragment of it

#pragma unroll
        for (int kk = 0; kk < kV4BK; kk += kFragK) {
            wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFragK, wmma::precision::tf32, wmma::row_major> a[kV4FragsM];
            wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFragK, wmma::precision::tf32, wmma::row_major> bf[kV4FragsN];
#pragma unroll
            for (int i = 0; i < kV4FragsM; ++i)
                wmma::load_matrix_sync(a[i], &As[wm * kV4WM + i * kFrag][kk], kV4BK + kV4Pad);
#pragma unroll
            for (int j = 0; j < kV4FragsN; ++j)
                wmma::load_matrix_sync(bf[j], &Bs[kk][wn * kV4WN + j * kFrag], kV4BN + kV4Pad);
#pragma unroll
            for (int i = 0; i < kV4FragsM; ++i)
#pragma unroll
                for (int j = 0; j < kV4FragsN; ++j) wmma::mma_sync(acc[i][j], a[i], bf[j], acc[i][j]);
        }
        __syncthreads();  // no warp stages the next slice while another still loads from this one
    }

    float* C = g.C + b * g.stride_c;
    float(*scratch)[kFrag + kV4Pad] = Cs[warp];
#pragma unroll
    for (int i = 0; i < kV4FragsM; ++i)
#pragma unroll
        for (int j = 0; j < kV4FragsN; ++j) {
            wmma::store_matrix_sync(&scratch[0][0], acc[i][j], kFrag + kV4Pad, wmma::mem_row_major);
            __syncwarp();  // the whole fragment is in the scratch before any lane reads it
            for (int e = lane; e < kFrag * kFrag; e += 32)
                store_c(g, C, row0 + wm * kV4WM + i * kFrag + e / kFrag, col0 + wn * kV4WN + j * kFrag + e % kFrag,
                        scratch[e / kFrag][e % kFrag]);
            __syncwarp();  // every lane has read it before the next fragment overwrites it
        }
}

// ---- launching ------------------------------------------------------------------------------

constexpr int64_t kMaxGridYZ = 65535;  // the hardware's limit on gridDim.y and gridDim.z

// Calls launch(grid, m_first, b_first) as often as needed to cover M rows in tiles of
// tile_m (grid y), N columns in tiles of tile_n (grid x) and the batch (grid z).
void launch_tiles(int64_t M, int64_t N, int64_t batch, int tile_m, int tile_n,
                  const std::function<void(dim3, int64_t, int64_t)>& launch) {
    const int64_t tiles_m = (M + tile_m - 1) / tile_m, tiles_n = (N + tile_n - 1) / tile_n;
    check(tiles_n <= 2147483647LL, "cuda gemm: N = ", N, " needs more column tiles than a grid holds");
    for (int64_t b_first = 0; b_first < batch; b_first += kMaxGridYZ)
        for (int64_t t_first = 0; t_first < tiles_m; t_first += kMaxGridYZ) {
            dim3 grid((unsigned)tiles_n, (unsigned)std::min(kMaxGridYZ, tiles_m - t_first),
                      (unsigned)std::min(kMaxGridYZ, batch - b_first));
            launch(grid, t_first * tile_m, b_first);
        }
}

// TD_CUDA_TF32=1 lets gemm() use tensor cores (v4); read once, at the first gemm().
bool tf32_allowed() {
    static const bool allowed = [] {
        const char* v = std::getenv("TD_CUDA_TF32");
        return v != nullptr && std::strcmp(v, "1") == 0;
    }();
    return allowed;
}

// A stored matrix of `rows` rows needs its row stride ld to be at least its row length
// (a single row may have any: it never steps to a next one).
void check_ld(const char* name, int64_t ld, int64_t rows, int64_t cols) {
    check(rows <= 1 || ld >= cols, "cuda gemm: ", name, " is stored as ", rows, " x ", cols, " but its row stride (ld",
          name, ") is ", ld);
}

}  // namespace

void gemm_with(GemmKernel kernel, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,  //
               const float* A, int64_t lda, int64_t stride_a,                                   //
               const float* B, int64_t ldb, int64_t stride_b,                                   //
               float* C, int64_t ldc, int64_t stride_c, int64_t batch, float beta) {
    check(M >= 0 && N >= 0 && K >= 0 && batch >= 0, "cuda gemm: sizes must be >= 0, got M = ", M, ", N = ", N,
          ", K = ", K, ", batch = ", batch);
    if (M == 0 || N == 0 || batch == 0) return;  // no element of C to write
    check(C != nullptr && (K == 0 || (A != nullptr && B != nullptr)), "cuda gemm: null matrix pointer");
    if (K > 0) {
        check_ld("a", lda, trans_a ? K : M, trans_a ? M : K);
        check_ld("b", ldb, trans_b ? N : K, trans_b ? K : N);
    }
    check_ld("c", ldc, M, N);
    if (kernel == GemmKernel::Best) kernel = tf32_allowed() ? GemmKernel::TensorCoreTF32 : GemmKernel::RegisterBlocked;
    const GemmArgs g{trans_a, trans_b, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, beta};

    switch (kernel) {
        case GemmKernel::Naive:
            launch_tiles(M, N, batch, kV1Block, kV1Block, [&](dim3 grid, int64_t m_first, int64_t b_first) {
                gemm_v1_naive<<<grid, dim3(kV1Block, kV1Block)>>>(g, m_first, b_first);
                check_launch("gemm_v1_naive");
            });
            return;
        case GemmKernel::Tiled:
            // BEGIN HIDE tiled-gemm
            // STUB: fail("gemm_v2_tiled (cuda): left out of this copy (the assignment tiled-gemm)");
            launch_tiles(M, N, batch, kV2Tile, kV2Tile, [&](dim3 grid, int64_t m_first, int64_t b_first) {
                gemm_v2_tiled<<<grid, dim3(kV2Tile, kV2Tile)>>>(g, m_first, b_first);
                check_launch("gemm_v2_tiled");
            });
            // END HIDE tiled-gemm
            return;
        case GemmKernel::RegisterBlocked:
            launch_tiles(M, N, batch, kV3BM, kV3BN, [&](dim3 grid, int64_t m_first, int64_t b_first) {
                gemm_v3_register_blocked<<<grid, kV3Threads>>>(g, m_first, b_first);
                check_launch("gemm_v3_register_blocked");
            });
            return;
        case GemmKernel::TensorCoreTF32:
            launch_tiles(M, N, batch, kV4BM, kV4BN, [&](dim3 grid, int64_t m_first, int64_t b_first) {
                gemm_v4_tensor_core_tf32<<<grid, kV4Threads>>>(g, m_first, b_first);
                check_launch("gemm_v4_tensor_core_tf32");
            });
            return;
        case GemmKernel::Best: break;  // resolved above
    }
    fail("cuda gemm: unknown kernel ", (int)kernel);
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,  //
          const float* A, int64_t lda, int64_t stride_a,                //
          const float* B, int64_t ldb, int64_t stride_b,                //
          float* C, int64_t ldc, int64_t stride_c, int64_t batch, float beta) {
    gemm_with(GemmKernel::Best, trans_a, trans_b, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, batch,
              beta);
}

}  // namespace td::cuda

namespace td {

namespace {

// One (B, R, C) operand of matmul as gemm() reads it: the stored matrix is row-major when
// the last dim has unit stride (op = identity), column-major when the second-to-last has
// (a transposed view, as backward passes make: op = transpose). The same rule as
// tensor/cpu/matmul.cpp's matrix_view, ld included: at least the stored row length, since
// a dim of size 1 may carry any stride (a (B, 1, K) operand's row stride means nothing).
struct GemmOperand {
    const float* data;
    bool trans;
    int64_t ld, batch_stride;  // batch_stride 0: one matrix broadcast over the batch
};

GemmOperand gemm_operand(const Tensor& t) {
    const Shape& st = t.strides();
    const int64_t rows = t.size(1), cols = t.size(2);
    if (st[2] == 1 || cols == 1) return {t.data_f32(), false, std::max<int64_t>(st[1], cols), st[0]};
    if (st[1] == 1 || rows == 1) return {t.data_f32(), true, std::max<int64_t>(st[2], rows), st[0]};
    fail("matmul kernel (cuda): operand with strides ", shape_str(st), " is neither row- nor column-major");
}

}  // namespace

// out (B, M, N) = a (B, M, K) @ b (B, K, N): one batched gemm(), out overwritten (beta 0).
void CudaBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
    check(out.is_contiguous(), "matmul kernel (cuda): output must be contiguous");
    check(a.dim() == 3 && b.dim() == 3 && out.dim() == 3, "matmul kernel (cuda): expected 3-d operands, got ",
          a.shape(), " @ ", b.shape(), " -> ", out.shape());
    const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
    if (B == 0 || M == 0 || N == 0) return;
    if (K == 0) {
        fill(out, 0.0);
        return;
    }  // an empty sum is 0 (a and b may have no storage)
    GemmOperand ga = gemm_operand(a), gb = gemm_operand(b);
    cuda::gemm(ga.trans, gb.trans, M, N, K, ga.data, ga.ld, ga.batch_stride, gb.data, gb.ld, gb.batch_stride,
               out.data_f32(), N, M * N, B, 0.0f);
}

}  // namespace td
