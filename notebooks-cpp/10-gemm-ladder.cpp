// %% [markdown]
// # 10 A kernel from naive to tiled: the GEMM ladder
//
// Almost every FLOP of a diffusion model is a matrix product. A linear layer is one; so
// is attention (Q K^T, then the weights times V); and our convolution is im2col followed
// by one GEMM per image (`tensor/cpu/conv.cpp`), so the UNet's 3x3 convolutions are GEMMs
// too. On the CPU the engine hands them to Eigen (`tensor/cpu/matmul.cpp`). On a GPU we
// will write the kernel ourselves, and the first lesson of writing one is that the
// arithmetic is easy and the memory traffic is everything.
//
// The CUDA kernels are the CUDA backend's (`cuda/matmul.cu`), and they need a GPU to
// run. This notebook teaches the ladder they climb through its **CPU reference**,
// `tensor/cpu/gemm_ladder.h`: the same three kernels, with the same tile shapes, for
// C = A B with row-major float matrices of any M, N, K, each written as the loops a GPU
// would run,
//
//     for blockIdx.y, blockIdx.x in the grid          // blocks: independent, in parallel on the SMs
//       for threadIdx.y, threadIdx.x in the block     // threads: in parallel, in warps of 32
//         the kernel body, as one thread runs it
//
// - `gemm_v1_naive`: one thread per element of C, reading A and B from global memory;
// - `gemm_v2_tiled`: a block stages tiles of A and B in shared memory, every thread
//   reuses them;
// - `gemm_v3_register_blocked`: every thread computes an 8 x 8 patch of C in registers.
//
// On the CPU the loops over threads simply run one after another, so you can set a
// breakpoint in `gemm_v2_tiled` and watch one simulated thread load its element of a
// tile. Each kernel counts the loads it performs (`GemmCounts`), so the reuse is
// measured, not asserted. **GPU timings come with the CUDA backend, measured on a GPU**;
// the CPU timings at the end of this notebook measure caches, not a GPU.

// %%
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "notebooks-cpp/notebook.h"
#include "tensor/cpu/gemm_ladder.h"

using namespace td;

const char* NB = "10-gemm-ladder";

// The largest |a - b| over the elements: how far a kernel is from td::matmul.
double max_abs_error(const Tensor& a, const Tensor& b) {
    std::vector<float> x = a.to_vector(), y = b.to_vector();
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, (double)std::fabs(x[i] - y[i]));
    return worst;
}

// Seconds per call of fn: the best of `repeats` runs (the least disturbed by the other
// work on the machine), after one warm-up run.
double seconds_per_call(const std::function<void()>& fn, int repeats) {
    fn();
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        fn();
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::min(best, s);
    }
    return best;
}

int64_t ceil_div(int64_t n, int64_t d) { return (n + d - 1) / d; }

int main() {
    // %% [markdown]
    // ## The launch: which thread computes which element
    //
    // A CUDA kernel is launched on a grid of blocks, `kernel<<<grid, block>>>(...)`. For a
    // GEMM the natural grid covers C with tiles: block (by, bx) owns the tile of C starting
    // at row by * BM, column bx * BN. Threads inside a block have a (ty, tx) index;
    // **threadIdx.x walks the columns** of C, because 32 consecutive tx form a warp, and a
    // warp reading B[k][col .. col + 31] reads consecutive addresses, which the GPU serves
    // in one transaction ("coalesced"). When M or N is not a multiple of the tile, the
    // last row and column of blocks hang over the edge of C; their extra threads must not
    // write, and (in v2, v3) load zeros instead of elements that do not exist.
    //
    // The grids of the three kernels for C of 100 x 300:

    // %%
    {
        const int64_t M = 100, N = 300;
        // one line per kernel: its block, the grid that covers C, the threads that launches
        auto launch = [&](const char* kernel, int64_t tile_m, int64_t tile_n, int64_t rows_per_thread,
                          const char* per_thread) {
            const int64_t gx = ceil_div(N, tile_n), gy = ceil_div(M, tile_m);
            const int64_t ty = tile_m / rows_per_thread, tx = tile_n / rows_per_thread;  // threads per block
            const std::string block = std::to_string(ty) + " x " + std::to_string(tx);
            std::printf("%-22s %-9s (%2lld, %2lld)   %-12s %6lld threads for %lld elements of C\n", kernel,
                        block.c_str(), (long long)gx, (long long)gy, per_thread, (long long)(gx * gy * ty * tx),
                        (long long)(M * N));
        };
        std::printf("%-22s %-9s %-10s %-12s\n", "kernel", "block", "grid", "C per thread");
        launch("v1 naive", 16, 16, 1, "1 element");
        launch("v2 tiled, T = 32", 32, 32, 1, "1 element");
        launch("v3 register blocked", kBM, kBN, kTM, "8 x 8 patch");
    }

    // %% [markdown]
    // ## Correct first: each kernel against td::matmul
    //
    // Before counting anything, each version must compute the same C as the engine's
    // `td::matmul` (Eigen). The shapes include the cases that break tiled kernels: a
    // single element, odd sizes, sizes that are not multiples of the tile (16 or 32 for
    // v1 and v2, 128 for v3), a tall-skinny and a wide product. (`tests/test_gemm_ladder.cpp`
    // runs the same comparison, plus the load counts below, under `-tc="gemm ladder*"`.)
    // The error is rarely exactly 0: float addition is not associative, and each kernel
    // adds the K products in a different order from Eigen's.

    // %%
    {
        struct Case {
            int64_t M, N, K;
            const char* what;
        };
        std::vector<Case> cases = {{1, 1, 1, "one element"},      {3, 5, 7, "odd"},
                                   {17, 33, 19, "not multiples"}, {256, 256, 128, "multiples of 128"},
                                   {300, 3, 5, "tall-skinny"},   {2, 257, 40, "wide"}};
        Generator gen(0);
        std::printf("%-20s %-18s %12s %12s %12s %12s\n", "M x N x K", "", "v1 naive", "v2 T=16", "v2 T=32", "v3");
        for (const Case& c : cases) {
            Tensor A = randn({c.M, c.K}, gen), B = randn({c.K, c.N}, gen);
            Tensor ref = matmul(A, B);
            char dims[32];
            std::snprintf(dims, sizeof dims, "%lld x %lld x %lld", (long long)c.M, (long long)c.N, (long long)c.K);
            double e1 = max_abs_error(gemm_v1_naive(A, B), ref);
            double e2 = max_abs_error(gemm_v2_tiled(A, B, 16), ref), e2b = max_abs_error(gemm_v2_tiled(A, B, 32), ref);
            double e3 = max_abs_error(gemm_v3_register_blocked(A, B), ref);
            std::printf("%-20s %-18s %12.2e %12.2e %12.2e %12.2e\n", dims, c.what, e1, e2, e2b, e3);
        }
    }

    // %% [markdown]
    // All errors are at the level of float32 rounding (entries of C are sums of K products
    // of N(0, 1) numbers, so of size sqrt(K); float32 keeps about 7 digits).
    //
    // ## v1: one thread per element, 2 M N K loads
    //
    // Thread (ty, tx) of block (by, bx) computes C[row][col] with row = by * 16 + ty,
    // col = bx * 16 + tx:
    //
    //     float acc = 0;
    //     for (k = 0; k < K; ++k) acc += A[row * K + k] * B[k * N + col];
    //     C[row * N + col] = acc;
    //
    // Every multiply-add needs two numbers from global memory, and nothing is shared:
    // A's row `row` is read again by each of the N threads of that row, B's column `col`
    // by each of the M threads of that column. That is 2 M N K loads for M N K
    // multiply-adds. On a GPU, global memory (HBM) delivers on the order of 1.5-3 TB/s
    // while the cores can do tens of TFLOP/s: an A100, say, about 19.5 TFLOP/s of float32
    // against 1.5 TB/s, 13 FLOP per byte. v1 does 2 FLOP (one multiply-add) per 8 bytes,
    // 0.25 FLOP/byte: it would run at 2% of the arithmetic the chip has. (Caches soften
    // this in practice; the counts below are what the kernel *asks* for.)
    //
    // ## v2: tiles in shared memory, each load used T times
    //
    // A block of T x T threads computes a T x T tile of C. It walks K in slices of T
    // ("phases"); in each phase its threads cooperatively load a T x T tile of A (rows of
    // the block, columns t0 .. t0 + T) and a T x T tile of B into **shared memory**, a
    // small on-chip memory all threads of one block can read in a few cycles. Thread
    // (ty, tx) loads exactly one element of each: A[row][t0 + tx] into As[ty][tx] and
    // B[t0 + ty][col] into Bs[ty][tx]. Then each thread does T multiply-adds from shared
    // memory, row ty of As times column tx of Bs. As[ty][k] is read by the T threads of
    // row ty, Bs[k][tx] by the T threads of column tx: **every element brought from global
    // memory is used T times**, and the loads drop from 2 M N K to
    // M K ceil(N / T) + K N ceil(M / T), about 2 M N K / T.
    //
    // Two barriers (`__syncthreads()`) per phase make it correct: after the loads (a
    // thread is about to read elements other threads loaded) and after the multiply-adds
    // (the next phase overwrites the tiles others may still be reading). Why the tile is
    // **square**: with T x T threads and T x T tiles each thread loads exactly one element
    // of each tile, and the A tile's width equals the B tile's height (both are the K
    // slice). Why **16 or 32**: reuse grows with T, and T x T threads may not exceed 1,024
    // per block, so T <= 32; the two tiles cost 2 T^2 floats of shared memory (8 KB at
    // T = 32); and multiples of 16 keep a warp's loads of a tile row contiguous. The CUDA
    // backend's v2 uses T = 32: one warp is exactly one row of the tile.
    //
    // ## v3: an 8 x 8 patch of C per thread
    //
    // v2 still reads two floats from shared memory per multiply-add, and a load instruction
    // per FMA is now the limit. v3 makes each of the block's 16 x 16 threads responsible for
    // an 8 x 8 patch of C, kept in 64 registers. At each k the thread loads 8 values of the
    // A tile and 8 of the B tile into registers and does all 64 products (an outer
    // product): 64 multiply-adds per 16 shared loads, 8 times v2's ratio. The block now
    // covers a 128 x 128 tile of C, so each global load is used 128 times: 2 M N K FLOP over
    // 4 M N K (1/128 + 1/128) bytes, 32 FLOP per byte of global memory. (A thread's 8 rows
    // are two groups of 4, half a tile apart, `v3_row` in `gemm_ladder.cpp`: on the GPU that
    // keeps a warp's reads of shared memory free of bank conflicts; the arithmetic does not
    // care.)
    //
    // The counters, for M = N = K = 512:

    // %%
    {
        const int64_t M = 512, N = 512, K = 512;
        Generator gen(1);
        Tensor A = randn({M, K}, gen), B = randn({K, N}, gen);
        struct Row {
            const char* name;
            GemmCounts c;
        };
        std::vector<Row> rows(5);
        rows[0].name = "v1 naive";
        gemm_v1_naive(A, B, &rows[0].c);
        rows[1].name = "v2 tiled, T = 8";
        gemm_v2_tiled(A, B, 8, &rows[1].c);
        rows[2].name = "v2 tiled, T = 16";
        gemm_v2_tiled(A, B, 16, &rows[2].c);
        rows[3].name = "v2 tiled, T = 32";
        gemm_v2_tiled(A, B, 32, &rows[3].c);
        rows[4].name = "v3 128x128 block, 8x8/thr.";
        gemm_v3_register_blocked(A, B, &rows[4].c);
        std::printf("M = N = K = %lld: %lld multiply-adds, A and B hold %lld floats\n\n", (long long)M,
                    (long long)(M * N * K), (long long)(M * K + K * N));
        std::printf("%-28s %14s %9s %14s %16s %14s\n", "kernel", "global loads", "v1 / this", "uses per load",
                    "FLOP / DRAM byte", "shared / FMA");
        for (const Row& r : rows) {
            double loads = (double)r.c.global_loads();
            std::printf("%-28s %14lld %8.0fx %14.1f %16.2f %14.2f\n", r.name, (long long)r.c.global_loads(),
                        (double)rows[0].c.global_loads() / loads, 2.0 * (double)r.c.fmas / loads,
                        2.0 * (double)r.c.fmas / (4.0 * loads), (double)r.c.shared_loads / (double)r.c.fmas);
        }
    }

    // %% [markdown]
    // Read the columns: "uses per load" is how many multiply-adds each float brought from
    // global memory feeds (each FMA uses two operands): 1 for v1, T for v2, 128 for v3.
    // "FLOP / DRAM byte" is the arithmetic intensity a roofline plot puts on its x axis
    // (2 FLOP per FMA, 4 bytes per float): v1's 0.25 would starve any GPU; v2 at T = 16 gets
    // 4, at T = 32, 8, still below the roughly 13 FLOP/byte where an A100's float32
    // arithmetic, not its memory, becomes the limit; v3 reaches 32, well past it. The last
    // column is the shared-memory traffic per FMA: 2 for v2 whatever T (every multiply-add
    // reads As and Bs), 0.25 for v3. That is the next wall after DRAM, and v3's register
    // tile is what breaks it.
    //
    // The counts are exact, not estimates: `tests/test_gemm_ladder.cpp` checks
    // `global_loads_a == M K ceil(N / T)` and `global_loads_b == K N ceil(M / T)` on every
    // test shape. With padding, tiles over the edge load zeros, not data, so they cost
    // multiply-adds (the `fmas` count includes them) but no loads.
    //
    // How the loads grow with the size of the problem (square M = N = K = n):

    // %%
    {
        std::vector<float> log2n, l1, l2, l3, data;
        for (int64_t n : {16, 32, 64, 128, 256, 512}) {
            Generator gen(2);
            Tensor A = randn({n, n}, gen), B = randn({n, n}, gen);
            GemmCounts c1, c2, c3;
            gemm_v1_naive(A, B, &c1);
            gemm_v2_tiled(A, B, 32, &c2);
            gemm_v3_register_blocked(A, B, &c3);
            log2n.push_back((float)std::log2((double)n));
            l1.push_back((float)c1.global_loads());
            l2.push_back((float)c2.global_loads());
            l3.push_back((float)c3.global_loads());
            data.push_back((float)(2 * n * n));
            std::printf("n = %3lld: loads v1 %11lld  v2 %9lld  v3 %8lld  (A and B hold %6lld)\n", (long long)n,
                        (long long)c1.global_loads(), (long long)c2.global_loads(), (long long)c3.global_loads(),
                        (long long)(2 * n * n));
        }
        // The plot draws no axis labels: light lines at every power of 10 give the scale.
        std::vector<td::plot::Series> curves;
        for (int k = 3; k <= 8; ++k)
            curves.push_back({{4.0f, 9.0f}, {(float)std::pow(10.0, k), (float)std::pow(10.0, k)}, 0xccccccu});
        curves.push_back({log2n, l1, 0xd62728});
        curves.push_back({log2n, l2, 0x1f77b4});
        curves.push_back({log2n, l3, 0x2ca02c});
        curves.push_back({log2n, data, 0x7f7f7f});
        nb::show_plot(NB, "loads.png", curves,
                      "Global-memory loads for M = N = K = n, log-log: n = 16 (left) to 512 (right), light lines at "
                      "1e3, 1e4, ..., 1e8. Red: v1, 2 n^3. Blue: v2 (T = 32), 2 n^3 / 32. Green: v3, 2 n^3 / 128. "
                      "Grey: the 2 n^2 floats A and B hold, what a kernel that read each once would load.",
                      true);
    }

    // %% [markdown]
    // On log-log axes the three kernels are parallel lines of slope 3 (n^3 loads): tiling
    // shifts the line down by the log of the tile width, it does not change the slope.
    // The grey line, the data itself, has slope 2: the gap between them widens with n,
    // which is why bigger tiles (and, on real GPUs, the L2 cache that catches re-reads
    // between blocks) keep paying off for big matrices. Up to the size of a block (32 for
    // v2, 128 for v3) a kernel reads every element exactly once: one block covers all of C,
    // and its line lies on the grey one.
    //
    // ## What the CUDA kernel of v2 looks like
    //
    // The CPU reference's body is the kernel below with the two thread loops wrapped
    // around each phase. On a GPU the loops disappear: every thread runs the body at once,
    // with its own `threadIdx`, and the barriers keep the phases in step. (The backend's
    // version in `cuda/matmul.cu` adds transposed operands, a batch, and one column of
    // padding per shared row against bank conflicts; the shape of it is this.)
    //
    // ```cuda
    // #define TILE 32
    //
    // // C (M, N) = A (M, K) B (K, N), row-major. Launch:
    // //   dim3 block(TILE, TILE), grid((N + TILE - 1) / TILE, (M + TILE - 1) / TILE);
    // //   gemm_v2_tiled<<<grid, block>>>(A, B, C, M, N, K);
    // __global__ void gemm_v2_tiled(const float* A, const float* B, float* C, int M, int N, int K) {
    //     __shared__ float As[TILE][TILE];        // one tile of A and one of B per block
    //     __shared__ float Bs[TILE][TILE];
    //     const int tx = threadIdx.x, ty = threadIdx.y;
    //     const int row = blockIdx.y * TILE + ty; // this thread's element of C
    //     const int col = blockIdx.x * TILE + tx;
    //     float acc = 0.0f;                       // in a register
    //     for (int t0 = 0; t0 < K; t0 += TILE) {
    //         // each thread loads one element of each tile; zeros off the edge
    //         As[ty][tx] = (row < M && t0 + tx < K) ? A[row * K + t0 + tx] : 0.0f;
    //         Bs[ty][tx] = (t0 + ty < K && col < N) ? B[(t0 + ty) * N + col] : 0.0f;
    //         __syncthreads();                    // the tiles are complete
    //         for (int k = 0; k < TILE; ++k) acc += As[ty][k] * Bs[k][tx];
    //         __syncthreads();                    // everyone is done reading them
    //     }
    //     if (row < M && col < N) C[row * N + col] = acc;
    // }
    // ```
    //
    // Compare it line by line with `gemm_v2_tiled` in `tensor/cpu/gemm_ladder.cpp`: `acc`
    // becomes a vector with one slot per thread (registers are private, and the CPU runs
    // the threads in turn), each `__syncthreads()` becomes the end of a loop over all
    // threads, and `__shared__` becomes one pair of buffers reused by the blocks, which
    // the CPU also runs in turn. A bug the CPU version cannot show: leave out the second
    // `__syncthreads()` and on a GPU a fast warp starts overwriting As while a slow one
    // still reads it; the result is wrong only sometimes. On the CPU the threads never
    // overlap, so the CPU reference is a check of the *indexing*, not of the barriers.
    //
    // ## Timings on the CPU, beside Eigen
    //
    // The same kernels, timed on this machine's CPU at a few sizes, next to the engine's
    // `td::matmul` (Eigen, which packs blocks of A and B into cache-sized panels, the CPU's
    // version of staging tiles, and runs a register-blocked micro-kernel with AVX/FMA, the
    // CPU's version of v3). All on one thread: the ladder kernels run the blocks one after
    // another, so Eigen gets one thread too. GFLOP/s = 2 M N K / time, the best of a few
    // runs (this machine is shared, so read the ratios, not the digits).

    // %%
    {
        std::printf("%-6s %12s %12s %12s %14s    (GFLOP/s, one thread each)\n", "n", "v1 naive", "v2 T=32", "v3",
                    "td::matmul");
        omp_set_num_threads(1);  // Eigen on one thread, as the ladder kernels run
        for (int64_t n : {64, 128, 256, 512}) {
            Generator gen(3);
            Tensor A = randn({n, n}, gen), B = randn({n, n}, gen);
            const double flop = 2.0 * (double)(n * n * n);
            const int repeats = n <= 128 ? 20 : n <= 256 ? 5 : 2;
            auto gflops = [&](const std::function<void()>& fn) { return flop / seconds_per_call(fn, repeats) / 1e9; };
            double g1 = gflops([&] { gemm_v1_naive(A, B); });
            double g2 = gflops([&] { gemm_v2_tiled(A, B, 32); });
            double g3 = gflops([&] { gemm_v3_register_blocked(A, B); });
            double ge = gflops([&] { matmul(A, B); });
            std::printf("%-6lld %12.2f %12.2f %12.2f %14.2f\n", (long long)n, g1, g2, g3, ge);
        }
    }

    // %% [markdown]
    // On the CPU the same ideas pay off for a different reason. There is no shared memory
    // to manage, but there are caches: v1's thread walks down a column of B, N floats
    // apart, touching a new cache line at every k, while v2 and v3 work on small tiles that
    // stay in the L1 cache, and v3's fixed 8 x 8 register patch lets the compiler keep the
    // accumulators in registers and vectorise. At n = 64 all of B fits in the caches, so
    // v1's column walk costs little and v1 and v2 run alike, and v3 spends three quarters
    // of its work on the zero padding of a 128 x 128 tile: reuse pays once the data no
    // longer fits near the core, and big tiles pay on big matrices. Eigen is far ahead
    // because it adds what this notebook leaves out on purpose (SIMD intrinsics, packing
    // panels into the exact order its micro-kernel reads, prefetching): the gap is the
    // price of readability. None of these numbers says anything about a GPU: the CUDA
    // backend times its own rungs, beside cuBLAS, on a GPU.
    //
    // ## Try it
    //
    // - The body of the tile loop of `gemm_v2_tiled` (the staging and the accumulation)
    //   is marked `// BEGIN SOLUTION tiled-gemm` ... `// END SOLUTION tiled-gemm`: `make
    //   assignment NAME=tiled-gemm` turns it into a stub, and
    //   `build/run_tests -tc="gemm ladder*"` grades it (the results against td::matmul,
    //   and the load counts, which a kernel that ignores the tiles cannot fake).
    // - In gdb: build this notebook without optimisation (`make DEBUG=1
    //   build-debug/notebooks/10-gemm-ladder/notebook`), `break td::gemm_v2_tiled`, `run`,
    //   `next` into the staging loop, and `print As` after the first phase; then
    //   `print acc` after the accumulation.
    // - Store the B tile transposed in v2 (`Bs[tx * T + ty] = ...`, and read `Bs[tx * T + k]`
    //   in the product): the tests still pass, but on a GPU a warp (one ty, tx = 0..31) now
    //   writes a column of Bs, 32 floats apart, all in one shared-memory bank: a 32-way bank
    //   conflict. The CPU reference cannot time that; a GPU can.
    // - Set kBM = kBN = 64 in `gemm_ladder.h` (64 threads per block, still 8 x 8 each):
    //   the counts say global loads double. On a GPU the bigger block is not free either:
    //   its tiles take more shared memory, and fewer blocks fit on one multiprocessor.
    return 0;
}
