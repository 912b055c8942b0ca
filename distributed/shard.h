// distributed/shard.h: which samples of a global minibatch each rank trains on.
//
// Every rank draws the same global minibatch (the P * B sample indices a one-process run
// with batch P * B would use at this step: same data order, same seed), and rank r keeps
// the contiguous slice [r * B, (r + 1) * B). Two consequences:
//
//  - Same samples. Over the P ranks the slices cover the global minibatch exactly once,
//    so a P-rank run with per-rank batch B sees, step by step, the samples of a 1-rank
//    run with batch P * B (and a checkpoint's data position means the same on 1 rank).
//  - Same gradient. With a loss that is a mean over the batch, rank r's gradient is
//    g_r = (1/B) sum_{i in slice r} grad l_i, and the mean over ranks is
//      (1/P) sum_r g_r = (1/(P B)) sum_{i in global batch} grad l_i,
//    the 1-rank gradient at batch P * B. This needs the P slices to be of EQUAL size
//    (with unequal slices the mean of means weights samples unequally), hence the rule
//    below: the global batch must divide evenly by P.
//
// (Anything else drawn per sample, such as a diffusion timestep t and noise eps, should be
// drawn for the global batch and sliced the same way, so that it matches too.)
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace td::dist {

// [begin, end) of rank `rank`'s slice of a global batch of `global_batch` samples over
// `size` ranks. Throws td::Error unless 0 <= rank < size and size divides global_batch.
struct ShardRange {
    int64_t begin = 0, end = 0;
    int64_t count() const { return end - begin; }
};
ShardRange shard_range(int64_t global_batch, int rank, int size);

// The slice itself: of a list of sample indices, or of a tensor along dim 0 (a view:
// images (P*B, C, H, W) -> (B, C, H, W), no copy).
std::vector<int64_t> shard(const std::vector<int64_t>& global_indices, int rank, int size);
Tensor shard(const Tensor& global_batch, int rank, int size);

}  // namespace td::dist
