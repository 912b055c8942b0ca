// nn/init.h: weight initialisation, matching PyTorch's defaults so a model trains the
// same way here as there.
//
// PyTorch's Linear and Conv layers use kaiming_uniform_(a = sqrt(5)), which works out
// to U(-1/sqrt(fan_in), 1/sqrt(fan_in)): gain = sqrt(2 / (1 + a^2)) = sqrt(1/3),
// std = gain / sqrt(fan_in), bound = sqrt(3) std = 1 / sqrt(fan_in). Their bias uses the
// same bound. Embedding uses N(0, 1); norms use gamma = 1, beta = 0.
#pragma once
#include <cmath>

#include "tensor/ops.h"
#include "tensor/random.h"

namespace td::nn {

// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for Linear/Conv weights and biases.
inline Tensor uniform_fan_in(const Shape& shape, int64_t fan_in, Generator& gen) {
    float bound = 1.0f / std::sqrt((float)fan_in);
    return rand(shape, gen, -bound, bound);
}

// A fixed generator for layers built without one (seed 0): reproducible by default.
inline Generator& init_generator() {
    static Generator gen(0);
    return gen;
}

}  // namespace td::nn
