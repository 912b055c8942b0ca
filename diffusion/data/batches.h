// diffusion/data/batches.h: minibatches from a Dataset, in a seeded random order.
//
//   BatchIterator it(data, {.batch_size = 128, .seed = 0, .hflip = true});
//   for (int step = 0; step < steps; ++step) {
//       Batch b = it.next();          // b.x: (128, C, H, W) in [-1, 1], b.y: (128) int64
//       ...
//   }
//   BatchState s = it.state();        // save with the checkpoint;
//   it.restore(s);                    // later: the very same batches follow
//
// Every epoch starts by drawing, from a td::Generator seeded once, a random order of the
// N samples (Fisher-Yates) and one coin per position for the horizontal flip. The order
// therefore depends only on (seed, epoch), never on the thread count or on how many
// batches were taken before a resume. An epoch that cannot fill another batch ends
// (drop_last) and next() moves on to the next epoch by itself.
#pragma once
#include <cstdint>
#include <vector>

#include "diffusion/data/dataset.h"
#include "tensor/random.h"

namespace td::diffusion {

struct Batch {
    Tensor x;  // (B, C, H, W) float32
    Tensor y;  // (B) int64
};

struct BatchOptions {
    int64_t batch_size = 64;
    uint64_t seed = 0;
    bool shuffle = true;    // false: the data set's own order every epoch
    bool hflip = false;     // flip each image left-right with probability 1/2 (augmentation)
    bool drop_last = true;  // true: every batch is full; a last, smaller one is skipped
};

// Where an iterator stands; five integers a checkpoint can store.
struct BatchState {
    int64_t epoch = 0;        // the epoch in progress (0 = the first)
    int64_t index = 0;        // position in this epoch's order of the next sample to hand out
    uint64_t gen_seed = 0;    // the generator as it was just before this epoch's order was
    uint64_t gen_offset = 0;  //   drawn: restoring draws the same order again
    int64_t num_samples = 0;  // the data set's size, checked on restore
};

class BatchIterator {
public:
    BatchIterator(const Dataset& data, const BatchOptions& options);

    Batch next();  // the next batch; starts the next epoch when this one is used up

    int64_t epoch() const { return epoch_; }
    int64_t index() const { return index_; }
    int64_t batches_per_epoch() const;
    const std::vector<int64_t>& order() const { return order_; }  // this epoch's sample order

    BatchState state() const;
    void restore(const BatchState& state);  // td::Error if it belongs to a data set of another size

private:
    void start_epoch();  // draws order_ and flip_ for epoch_ from gen_

    Tensor images_;  // (N, C, H, W), contiguous
    Tensor labels_;  // (N)
    BatchOptions opt_;
    Generator gen_;
    Generator epoch_start_;  // gen_ as it was before this epoch's draws
    int64_t epoch_ = 0;
    int64_t index_ = 0;
    std::vector<int64_t> order_;  // order_[k]: the sample at position k of this epoch
    std::vector<bool> flip_;      // flip_[k]: flip the sample at position k
};

}  // namespace td::diffusion
