// nn/layers.h: the small parameter-free (or nearly) layers, one line of forward each.
#pragma once
#include "nn/init.h"
#include "nn/module.h"
#include "tensor/nn_ops.h"

namespace td::nn {

struct SiLU : UnaryModule {
    Tensor forward(const Tensor& x) override { return silu(x); }
    std::string name() const override { return "SiLU"; }
};

struct GELU : UnaryModule {
    Tensor forward(const Tensor& x) override { return gelu(x); }
    std::string name() const override { return "GELU"; }
};

struct Identity : UnaryModule {
    Tensor forward(const Tensor& x) override { return x; }
    std::string name() const override { return "Identity"; }
};

// Dropout with its own seeded generator: the same seed drops the same elements.
class Dropout : public UnaryModule {
public:
    explicit Dropout(float p, uint64_t seed = 0) : p(p), gen(seed) {}
    Tensor forward(const Tensor& x) override { return dropout(x, p, is_training(), gen); }
    std::string name() const override { return "Dropout"; }
    float p;
    Generator gen;
};

// Nearest-neighbour upsampling by an integer factor (the UNet's way up).
struct Upsample : UnaryModule {
    explicit Upsample(int64_t scale) : scale(scale) {}
    Tensor forward(const Tensor& x) override { return upsample_nearest2d(x, scale); }
    std::string name() const override { return "Upsample"; }
    int64_t scale;
};

// Mean over k x k windows with stride k.
struct AvgPool2d : UnaryModule {
    explicit AvgPool2d(int64_t k) : k(k) {}
    Tensor forward(const Tensor& x) override { return avg_pool2d(x, k); }
    std::string name() const override { return "AvgPool2d"; }
    int64_t k;
};

// A lookup table of learned vectors (class labels, tokens): weight (num, dim) ~ N(0, 1).
class Embedding : public Module {
public:
    Embedding(int64_t num, int64_t dim, Generator& gen = init_generator()) {
        weight = register_parameter("weight", randn({num, dim}, gen));
    }
    Tensor forward(const Tensor& indices) { return embedding(weight, indices); }  // int64 (*) -> (*, dim)
    std::string name() const override { return "Embedding"; }
    Tensor weight;
};

}  // namespace td::nn
