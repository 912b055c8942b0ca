// distributed/data_parallel.h: what data parallelism adds to a training step, as three
// hooks a trainer calls without knowing how the ranks talk (docs/distributed.md).
//
//   DataParallel dp(comm);                 // comm null: one process, every hook a no-op
//   dp.start_identical(model);             // once: rank 0's weights on every rank
//   Tensor mine = dp.my_slice(global);     // this rank's samples of the global minibatch
//   loss.backward();
//   loss_value = dp.average_gradients(model.parameters(), loss_value);
//
// After average_gradients every rank holds the gradient of the global minibatch's mean
// loss (distributed/shard.h says why the mean of the ranks' means is that gradient), so
// every rank takes the same optimizer step and the models stay identical.
#pragma once
#include <vector>

#include "nn/module.h"
#include "tensor/tensor.h"

namespace td::dist {

class Communicator;  // distributed/communicator.h

class DataParallel {
public:
    explicit DataParallel(Communicator* comm) : comm_(comm) {}  // not owned; null: one rank

    int ranks() const;  // P (1 without a communicator)
    int rank() const;   // 0 .. P - 1

    // Rank 0's parameters and float32 / int64 buffers, copied to every rank.
    void start_identical(nn::Module& model) const;
    // Rows [r * B, (r + 1) * B) of a global minibatch of P * B (a view); itself when P = 1.
    Tensor my_slice(const Tensor& global) const;
    // Every parameter's gradient becomes its mean over the ranks, and so does the loss:
    // returns the global loss. One bucketed all-reduce; nothing happens when P = 1.
    float average_gradients(const std::vector<Tensor>& params, float loss) const;

private:
    Communicator* comm_;
};

}  // namespace td::dist
