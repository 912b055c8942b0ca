// cuda/split_plan.h: how many pieces a long sum is cut into so that the GPU has enough
// blocks to run at once. Plain host code, no CUDA: the kernels' launchers (cuda/conv.cu,
// cuda/reduce.cu) call it, and tests/test_cuda_sizes.cpp checks it on any machine.
//
// The problem both solve: a GPU runs one block per SM at a time (or a few), and an H100 has
// 132 SMs. A kernel that gives one block to each output row, or to each 128 x 128 tile of
// an output, leaves most SMs idle when there are few rows or tiles, however long each
// one's sum is: conv's weight gradient (8 x 36 outputs, summed over 900,000 positions) is
// one tile, one block, on one SM. Cutting each sum into S pieces gives S times as many
// blocks; each piece's partial sum goes to a buffer, and a second, small pass adds the S
// partials of each output in a fixed order (piece 0 first). No atomics: atomicAdd would
// add the pieces in whatever order the blocks finish, and the bits would change from run
// to run. S depends only on the shape (never on the GPU's SM count), so one shape gives
// the same bits on every GPU and every run.
#pragma once
#include <algorithm>
#include <cstdint>

namespace td::cuda {

// Enough blocks to fill an H100 (132 SMs) about twice, an A100 (108) more: the second
// wave hides the first's stragglers. More would only add partials to add up.
constexpr int64_t kTargetBlocks = 256;

// A sum of `length` terms cut into `pieces` pieces of `piece` terms, the last one shorter
// when piece does not divide length (pieces = ceil(length / piece)).
struct SplitPlan {
    int64_t pieces;  // 1: no split
    int64_t piece;   // terms per piece (the last may have fewer)
};

// `outputs_blocks` blocks would run without a split, each summing `length` terms; cut the
// sums so that about kTargetBlocks run, each piece at least `min_piece` terms long (shorter
// pieces cost more in partials than they gain in parallelism), at most `max_pieces` pieces.
inline SplitPlan plan_split(int64_t output_blocks, int64_t length, int64_t min_piece, int64_t max_pieces) {
    if (output_blocks <= 0 || length <= 0) return {1, std::max<int64_t>(length, 0)};
    int64_t want = (kTargetBlocks + output_blocks - 1) / output_blocks;  // pieces to reach the target
    int64_t pieces = std::min({want, length / std::max<int64_t>(min_piece, 1), std::max<int64_t>(max_pieces, 1)});
    if (pieces <= 1) return {1, length};
    int64_t piece = (length + pieces - 1) / pieces;
    return {(length + piece - 1) / piece, piece};  // rounding piece up can leave fewer pieces
}

// conv's weight gradient dW (M x N) = dY (M x K) @ cols^T (K x N), K = samples x positions:
// the GEMM's tiles of 128 x 128 (cuda/matmul.cu's v3) are the output blocks. Pieces of at
// least 1,024 terms (128 K-slices of 8 per block); the partials, pieces x M x N floats, at
// most 16 M floats (64 MiB).
inline SplitPlan plan_split_k(int64_t M, int64_t N, int64_t K) {
    const int64_t tiles = ((M + 127) / 128) * ((N + 127) / 128);
    const int64_t max_by_memory = std::max<int64_t>(1, (int64_t(16) << 20) / std::max<int64_t>(M * N, 1));
    return plan_split(tiles, K, 1024, std::min<int64_t>(max_by_memory, 256));
}

// A reduction over rows (cuda/reduce.cu): one block of 256 threads per row. Pieces of at
// least 2,048 elements (8 per thread), at most 1,024 per row.
inline SplitPlan plan_split_rows(int64_t rows, int64_t row_length) { return plan_split(rows, row_length, 2048, 1024); }

}  // namespace td::cuda
