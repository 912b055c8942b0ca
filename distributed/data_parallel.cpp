// distributed/data_parallel.cpp: see data_parallel.h.
#include "distributed/data_parallel.h"

#include "distributed/communicator.h"
#include "distributed/shard.h"

namespace td::dist {

int DataParallel::ranks() const { return comm_ ? comm_->size() : 1; }

int DataParallel::rank() const { return comm_ ? comm_->rank() : 0; }

// Every rank built the same weights from the same seed; sending rank 0's anyway costs one
// collective and rules out any difference (another build, another BLAS).
void DataParallel::start_identical(nn::Module& model) const {
    if (ranks() == 1) return;
    std::vector<Tensor> state;
    for (auto& [name, p] : model.named_parameters()) state.push_back(p);
    for (auto& [name, b] : model.named_buffers())
        if (b.dtype() == DType::Float32 || b.dtype() == DType::Int64) state.push_back(b);
    comm_->broadcast(state);
}

Tensor DataParallel::my_slice(const Tensor& global) const {
    if (ranks() == 1 || !global.defined()) return global;
    return shard(global, rank(), ranks());
}

// The loss travels in the same all-reduce as the gradients, one more tensor of one
// element, on the gradients' device.
float DataParallel::average_gradients(const std::vector<Tensor>& params, float loss) const {
    if (ranks() == 1) return loss;
    std::vector<Tensor> grads;
    for (const Tensor& p : params) grads.push_back(p.grad());
    grads.push_back(Tensor::from_vector({loss}, {1}).to(params.front().device()));
    comm_->allreduce_mean(grads);
    return grads.back().to(Device::CPU).to_vector()[0];
}

}  // namespace td::dist
