// tensor/cpu/gemm_ladder.cpp: the CPU reference of the CUDA GEMM ladder (see gemm_ladder.h).
//
// Every kernel below is written as the GPU runs it: an outer loop over the blocks of the
// grid, and inside it loops over the threads of a block. Where threads of one block must
// wait for each other, the comment says `__syncthreads()`: on the CPU the loops over the
// threads run one after another, so each such loop ends with every simulated thread done,
// which is exactly what the barrier guarantees on the GPU.
//
// Memory, as a CUDA programmer sees it:
//   global memory   A, B, C (DRAM on a GPU: hundreds of cycles per access, the scarce
//                   bandwidth a GEMM kernel tries to save)
//   shared memory   As, Bs: small tiles a block stages and all its threads read (on-chip,
//                   a few cycles); one buffer here, since the blocks run one at a time
//   registers       acc, a, b: private to one thread; a vector with one slot per thread here
//
// No backward: these are forward kernels, compared with td::matmul, not ops of the engine.
#include "tensor/cpu/gemm_ladder.h"

#include <algorithm>
#include <vector>

#include "tensor/error.h"

namespace td {

// How many blocks of `size` cover `n` elements (the last one may hang over the edge).
static int64_t ceil_div(int64_t n, int64_t size) { return (n + size - 1) / size; }

static void add_counts(GemmCounts* total, const GemmCounts& n) {
    if (!total) return;
    total->global_loads_a += n.global_loads_a;
    total->global_loads_b += n.global_loads_b;
    total->global_stores += n.global_stores;
    total->shared_loads += n.shared_loads;
    total->fmas += n.fmas;
}

// ---- v1: one thread per element of C ---------------------------------------------------------
//
// Launch: blocks of 16 x 16 threads, grid (ceil(N / 16), ceil(M / 16)). Thread (ty, tx) of
// block (by, bx) computes C[row][col], row = by * 16 + ty, col = bx * 16 + tx.
// threadIdx.x walks the columns because a warp is 32 consecutive tx: its 32 threads then read
// B[k][col .. col + 31], consecutive addresses the GPU fetches in one transaction
// (coalesced), and all read the same A[row][k] (one broadcast). No thread shares anything
// with another, so every multiply-add costs two loads from global memory: 2 M N K in all.
void gemm_v1_naive(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K, GemmCounts* counts) {
    constexpr int64_t BLOCK = 16;
    const int64_t grid_y = ceil_div(M, BLOCK), grid_x = ceil_div(N, BLOCK);
    GemmCounts n;
    for (int64_t by = 0; by < grid_y; ++by)
        for (int64_t bx = 0; bx < grid_x; ++bx)
            for (int64_t ty = 0; ty < BLOCK; ++ty)
                for (int64_t tx = 0; tx < BLOCK; ++tx) {
                    const int64_t row = by * BLOCK + ty, col = bx * BLOCK + tx;
                    if (row >= M || col >= N) continue;  // the edge blocks' spare threads do nothing
                    float acc = 0.0f;                    // a register
                    for (int64_t k = 0; k < K; ++k) acc += A[row * K + k] * B[k * N + col];
                    C[row * N + col] = acc;
                    n.global_loads_a += K;  // the k loop read a whole row of A ...
                    n.global_loads_b += K;  // ... and a whole column of B
                    n.fmas += K;
                    n.global_stores += 1;
                }
    add_counts(counts, n);
}

// ---- v2: shared-memory tiles --------------------------------------------------------------
//
// Launch: blocks of T x T threads (T = tile), grid (ceil(N / T), ceil(M / T)). Thread (ty, tx)
// of block (by, bx) computes C[row][col], row = by * T + ty, col = bx * T + tx, as in v1; but
// the block walks K in slices of T ("phases"): it stages the T x T tile A[by-rows][slice] and
// the T x T tile B[slice][bx-cols] in shared memory, then every thread runs T multiply-adds
// out of shared memory. Row ty of the A tile is read by the T threads of row ty, column tx of
// the B tile by the T threads of column tx: each element loaded from global memory is used
// T times, and the kernel loads M K ceil(N / T) + K N ceil(M / T), about 2 M N K / T, T times
// fewer than v1.
//
// Why square, and why 16 or 32 wide: with T x T threads and T x T tiles, each thread loads
// exactly one element of each tile per phase (no thread idles, none loads twice), and the A
// tile's width equals the B tile's height (both the K-slice). Reuse grows with T, and T is
// capped by the hardware: T x T threads <= 1,024 per block, so T <= 32; the two tiles take
// 2 T^2 floats of shared memory (8 KB at T = 32, well inside the 48 KB a block may use); and
// T a multiple of 16 keeps a warp's reads of a tile row on consecutive addresses. The CUDA
// twin (cuda/matmul.cu) uses T = 32, a warp per tile row, and pads each shared row to 33
// floats against bank conflicts, a GPU detail that changes no index here.
void gemm_v2_tiled(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K, int64_t tile,
                   GemmCounts* counts) {
    check(tile >= 1 && tile <= 32, "gemm_v2_tiled: tile ", tile,
          " must be in [1, 32] (a CUDA block of tile x tile threads has at most 1,024 threads)");
    const int64_t T = tile;
    const int64_t grid_y = ceil_div(M, T), grid_x = ceil_div(N, T);
    std::vector<float> As(T * T), Bs(T * T);  // __shared__ float As[T][T], Bs[T][T] (row-major)
    std::vector<float> acc(T * T);            // registers: thread (ty, tx)'s sum is acc[ty * T + tx]
    GemmCounts n;
    for (int64_t by = 0; by < grid_y; ++by)
        for (int64_t bx = 0; bx < grid_x; ++bx) {
            std::fill(acc.begin(), acc.end(), 0.0f);  // every thread starts at 0
            for (int64_t t0 = 0; t0 < K; t0 += T) {   // phase: the K-slice [t0, t0 + T)
                // BEGIN SOLUTION tiled-gemm: stage one element of each tile per thread, then accumulate (see above)
                // STUB: (void)A, (void)B;
                // STUB: fail("gemm_v2_tiled: not implemented yet (assignment tiled-gemm)");
                // Staging: thread (ty, tx) loads A[row][t0 + tx] into As[ty][tx] and
                // B[t0 + ty][col] into Bs[ty][tx]: together the block loads both tiles whole,
                // and along tx (a warp) the addresses are consecutive (coalesced).
                for (int64_t ty = 0; ty < T; ++ty)
                    for (int64_t tx = 0; tx < T; ++tx) {
                        const int64_t row = by * T + ty, col = bx * T + tx;
                        const int64_t a_col = t0 + tx, b_row = t0 + ty;
                        // Off the edge of A or B: a zero, which adds nothing to any sum.
                        As[ty * T + tx] = 0.0f;
                        Bs[ty * T + tx] = 0.0f;
                        if (row < M && a_col < K) {
                            As[ty * T + tx] = A[row * K + a_col];
                            ++n.global_loads_a;
                        }
                        if (b_row < K && col < N) {
                            Bs[ty * T + tx] = B[b_row * N + col];
                            ++n.global_loads_b;
                        }
                    }
                // __syncthreads(): a thread is about to read elements other threads loaded;
                // none may start before every load of this phase has landed.
                //
                // Accumulation: thread (ty, tx) multiplies row ty of As with column tx of Bs.
                for (int64_t ty = 0; ty < T; ++ty)
                    for (int64_t tx = 0; tx < T; ++tx) {
                        float sum = acc[ty * T + tx];
                        for (int64_t k = 0; k < T; ++k) sum += As[ty * T + k] * Bs[k * T + tx];
                        acc[ty * T + tx] = sum;
                    }
                n.shared_loads += 2 * T * T * T;  // T threads^2, T steps, one As and one Bs read each
                n.fmas += T * T * T;
                // __syncthreads(): the next phase overwrites As and Bs; no thread may load into
                // them while another is still reading this phase's values.
                // END SOLUTION tiled-gemm
            }
            // Write-back: each thread stores its one element, if it lies inside C.
            for (int64_t ty = 0; ty < T; ++ty)
                for (int64_t tx = 0; tx < T; ++tx) {
                    const int64_t row = by * T + ty, col = bx * T + tx;
                    if (row >= M || col >= N) continue;
                    C[row * N + col] = acc[ty * T + tx];
                    ++n.global_stores;
                }
        }
    add_counts(counts, n);
}

// ---- v3: a register tile per thread ----------------------------------------------------------
//
// v2's threads read two floats from shared memory per multiply-add; shared memory is fast,
// but that is still the limit (a load instruction per FMA). v3 gives each thread more
// outputs: a kTM x kTN = 8 x 8 patch of C in registers. Per step k it reads 8 values of the
// A tile (a column of its rows) and 8 of the B tile (a row of its columns) into registers,
// then does all 64 products (an outer product): 64 multiply-adds from 16 loads, 16 times v2's
// ratio. The block, 16 x 16 threads of 8 x 8 outputs, covers a kBM x kBN = 128 x 128 tile of
// C, so each element loaded from global memory is used 128 times: the loads drop to
// M K ceil(N / 128) + K N ceil(M / 128).
//
// Launch: blocks of 256 threads, t = 16 ty + tx, grid (ceil(N / kBN), ceil(M / kBM)); the
// block walks K in slices of kBK = 8. Thread (ty, tx) owns tile rows v3_row(ty, 0..7) and
// columns v3_col(tx, 0..7): two 4-wide pieces half a tile apart rather than 8 contiguous
// rows, the layout of the CUDA twin (cuda/matmul.cu), where it keeps the warp's float4
// reads of shared memory free of bank conflicts. The tiles are stored k-major, As[k][i] and
// Bs[k][j], so that a thread's 4 consecutive rows (columns) are adjacent in memory.
// Staging: 1,024 elements of each tile per slice, 4 per thread, consecutive threads on
// consecutive addresses of A and of B (coalesced).

// The staging maps and v3_row / v3_col below assume these shapes; changing them needs a
// look at both, and this says so at compile time.
static_assert(kTM == 8 && kTN == 8, "gemm_ladder v3: v3_row / v3_col split a patch into two 4-wide pieces");
static_assert(kV3Threads % kBK == 0 && kV3Threads % kBN == 0 && kBM * kBK % kV3Threads == 0 &&
                  kBK * kBN % kV3Threads == 0 && kBM == (kBM / kTM) * 4 * 2 && kBN == (kBN / kTN) * 4 * 2,
              "gemm_ladder v3: every thread stages the same number of tile elements");

// Row of the block's tile (0..127) held in register row i (0..7) of thread row ty, and the
// same for columns.
static int64_t v3_row(int64_t ty, int64_t i) { return (i < 4 ? 0 : kBM / 2) + ty * 4 + i % 4; }
static int64_t v3_col(int64_t tx, int64_t j) { return (j < 4 ? 0 : kBN / 2) + tx * 4 + j % 4; }

void gemm_v3_register_blocked(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K,
                              GemmCounts* counts) {
    constexpr int64_t threads_x = kBN / kTN, threads_y = kBM / kTM;  // 16 x 16
    const int64_t grid_y = ceil_div(M, kBM), grid_x = ceil_div(N, kBN);
    std::vector<float> As(kBK * kBM), Bs(kBK * kBN);  // __shared__ As[kBK][kBM], Bs[kBK][kBN]
    std::vector<float> regs(kV3Threads * kTM * kTN);  // thread t's 64 sums, kept between its turns
    GemmCounts n;
    for (int64_t by = 0; by < grid_y; ++by)
        for (int64_t bx = 0; bx < grid_x; ++bx) {
            std::fill(regs.begin(), regs.end(), 0.0f);
            for (int64_t t0 = 0; t0 < K; t0 += kBK) {  // phase: the K-slice [t0, t0 + kBK)
                // Staging, pass p = 0..3 of thread t: A element (i = t / 8 + 32 p, k = t % 8), a
                // warp reading 4 rows of 8 consecutive floats; B element (k = t / 128 + 2 p,
                // j = t % 128), a warp reading 32 consecutive floats.
                for (int64_t t = 0; t < kV3Threads; ++t) {
                    for (int64_t p = 0; p < kBM * kBK / kV3Threads; ++p) {
                        const int64_t i = t / kBK + (kV3Threads / kBK) * p, k = t % kBK;
                        const int64_t row = by * kBM + i, a_col = t0 + k;
                        As[k * kBM + i] = 0.0f;
                        if (row < M && a_col < K) {
                            As[k * kBM + i] = A[row * K + a_col];
                            ++n.global_loads_a;
                        }
                    }
                    for (int64_t p = 0; p < kBK * kBN / kV3Threads; ++p) {
                        const int64_t k = t / kBN + (kV3Threads / kBN) * p, j = t % kBN;
                        const int64_t b_row = t0 + k, col = bx * kBN + j;
                        Bs[k * kBN + j] = 0.0f;
                        if (b_row < K && col < N) {
                            Bs[k * kBN + j] = B[b_row * N + col];
                            ++n.global_loads_b;
                        }
                    }
                }
                // __syncthreads(): every tile element is loaded before any thread reads one.
                for (int64_t ty = 0; ty < threads_y; ++ty)
                    for (int64_t tx = 0; tx < threads_x; ++tx) {
                        // This thread's registers. On the GPU they stay put for the whole kernel;
                        // here the simulated threads take turns, so each one's are kept in regs
                        // between its turns (like a context switch).
                        float* saved = &regs[(ty * threads_x + tx) * kTM * kTN];
                        float acc[kTM * kTN];
                        std::copy(saved, saved + kTM * kTN, acc);
                        for (int64_t k = 0; k < kBK; ++k) {
                            float a[kTM], b[kTN];  // registers: a column of its rows of A, a row of its columns of B
                            for (int64_t i = 0; i < kTM; ++i) a[i] = As[k * kBM + v3_row(ty, i)];
                            for (int64_t j = 0; j < kTN; ++j) b[j] = Bs[k * kBN + v3_col(tx, j)];
                            // the outer product a b^T: kTM * kTN multiply-adds from kTM + kTN loads
                            for (int64_t i = 0; i < kTM; ++i)
                                for (int64_t j = 0; j < kTN; ++j) acc[i * kTN + j] += a[i] * b[j];
                        }
                        std::copy(acc, acc + kTM * kTN, saved);
                    }
                n.shared_loads += kV3Threads * kBK * (kTM + kTN);
                n.fmas += kV3Threads * kBK * kTM * kTN;
                // __syncthreads(): all reads of this slice are done before the next overwrites it.
            }
            // Write-back: each thread stores the part of its patch that lies inside C.
            for (int64_t ty = 0; ty < threads_y; ++ty)
                for (int64_t tx = 0; tx < threads_x; ++tx) {
                    const float* acc = &regs[(ty * threads_x + tx) * kTM * kTN];
                    for (int64_t i = 0; i < kTM; ++i)
                        for (int64_t j = 0; j < kTN; ++j) {
                            const int64_t row = by * kBM + v3_row(ty, i), col = bx * kBN + v3_col(tx, j);
                            if (row >= M || col >= N) continue;
                            C[row * N + col] = acc[i * kTN + j];
                            ++n.global_stores;
                        }
                }
        }
    add_counts(counts, n);
}

// ---- on tensors ---------------------------------------------------------------------------

// A (M, K) and B (K, N), 2-D float32 on the CPU: what every version needs.
static void check_gemm_args(const char* op, const Tensor& A, const Tensor& B) {
    check(A.defined() && B.defined(), op, ": A or B is an undefined tensor");
    const std::string shapes = " (A " + shape_str(A.shape()) + ", B " + shape_str(B.shape()) + ")";
    check(A.dim() == 2 && B.dim() == 2, op, ": A and B must be 2-D matrices", shapes);
    check(A.dtype() == DType::Float32 && B.dtype() == DType::Float32, op, ": A and B must be float32, got ",
          dtype_name(A.dtype()), " and ", dtype_name(B.dtype()));
    check(A.device() == Device::CPU && B.device() == Device::CPU, op, ": A and B must be CPU tensors");
    check(A.size(1) == B.size(0), op, ": A's columns (", A.size(1), ") must equal B's rows (", B.size(0), ")", shapes);
}

Tensor gemm_v1_naive(const Tensor& A, const Tensor& B, GemmCounts* counts) {
    check_gemm_args("gemm_v1_naive", A, B);
    Tensor a = A.contiguous(), b = B.contiguous(), c = Tensor::empty({A.size(0), B.size(1)});
    gemm_v1_naive(a.data_f32(), b.data_f32(), c.data_f32(), A.size(0), B.size(1), A.size(1), counts);
    return c;
}

Tensor gemm_v2_tiled(const Tensor& A, const Tensor& B, int64_t tile, GemmCounts* counts) {
    check_gemm_args("gemm_v2_tiled", A, B);
    Tensor a = A.contiguous(), b = B.contiguous(), c = Tensor::empty({A.size(0), B.size(1)});
    gemm_v2_tiled(a.data_f32(), b.data_f32(), c.data_f32(), A.size(0), B.size(1), A.size(1), tile, counts);
    return c;
}

Tensor gemm_v3_register_blocked(const Tensor& A, const Tensor& B, GemmCounts* counts) {
    check_gemm_args("gemm_v3_register_blocked", A, B);
    Tensor a = A.contiguous(), b = B.contiguous(), c = Tensor::empty({A.size(0), B.size(1)});
    gemm_v3_register_blocked(a.data_f32(), b.data_f32(), c.data_f32(), A.size(0), B.size(1), A.size(1), counts);
    return c;
}

}  // namespace td
