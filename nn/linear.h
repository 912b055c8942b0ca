// nn/linear.h: y = x W^T + b (PyTorch's nn.Linear), weight (out, in), bias (out).
#pragma once
#include "nn/init.h"
#include "nn/module.h"

namespace td::nn {

class Linear : public UnaryModule {
public:
    Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = init_generator());
    // x: (..., in) -> (..., out)
    Tensor forward(const Tensor& x) override;
    std::string name() const override { return "Linear"; }
    Tensor weight, bias;  // bias undefined when built without
};

}  // namespace td::nn
