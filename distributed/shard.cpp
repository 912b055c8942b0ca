// distributed/shard.cpp: the contiguous slice of a global minibatch (distributed/shard.h).
#include "distributed/shard.h"

#include "tensor/error.h"

namespace td::dist {

ShardRange shard_range(int64_t global_batch, int rank, int size) {
    check(size >= 1 && rank >= 0 && rank < size, "shard: rank ", rank, " is not one of 0 .. ", size - 1, " (", size,
          " ranks)");
    check(global_batch >= 0, "shard: a global batch of ", global_batch, " samples");
    check(global_batch % size == 0, "shard: a global batch of ", global_batch, " samples does not split evenly over ",
          size, " ranks: use a per-rank batch B and a global batch of ", size, " * B, so that every rank's slice",
          " has the same size (the mean of the ranks' gradients is then the gradient of the whole batch)");
    int64_t per_rank = global_batch / size;
    return {rank * per_rank, (rank + 1) * per_rank};
}

std::vector<int64_t> shard(const std::vector<int64_t>& global_indices, int rank, int size) {
    ShardRange r = shard_range((int64_t)global_indices.size(), rank, size);
    return std::vector<int64_t>(global_indices.begin() + r.begin, global_indices.begin() + r.end);
}

Tensor shard(const Tensor& global_batch, int rank, int size) {
    check(global_batch.defined() && global_batch.dim() >= 1, "shard: needs a tensor with a batch dim (dim 0)");
    ShardRange r = shard_range(global_batch.size(0), rank, size);
    return global_batch.narrow(0, r.begin, r.count());
}

}  // namespace td::dist
