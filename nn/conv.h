// nn/conv.h: Conv2d and ConvTranspose2d with PyTorch's parameter layout and init.
#pragma once
#include "nn/init.h"
#include "nn/module.h"

namespace td::nn {

// weight (out, in / groups, k, k), bias (out); fan_in = in / groups * k * k
class Conv2d : public UnaryModule {
public:
    Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1, int64_t padding = 0,
           int64_t groups = 1, bool bias = true, Generator& gen = init_generator());
    Tensor forward(const Tensor& x) override;  // (N, in, H, W) -> (N, out, OH, OW)
    std::string name() const override { return "Conv2d"; }
    Tensor weight, bias;
    int64_t stride, padding, groups;
};

// weight (in, out / groups, k, k) (PyTorch's layout), bias (out). PyTorch computes the
// init's fan_in from weight.size(1) * k * k = out / groups * k * k; we do the same.
class ConvTranspose2d : public UnaryModule {
public:
    ConvTranspose2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
                    int64_t padding = 0, int64_t output_padding = 0, int64_t groups = 1, bool bias = true,
                    Generator& gen = init_generator());
    Tensor forward(const Tensor& x) override;
    std::string name() const override { return "ConvTranspose2d"; }
    Tensor weight, bias;
    int64_t stride, padding, output_padding, groups;
};

}  // namespace td::nn
