// autograd/gradcheck.h: compare backward() with central finite differences.
//
// For f: inputs -> output, gradcheck builds the scalar L = sum(f(x) * w) with a fixed
// random w, gets dL/dx from backward(), and checks each element against
//     (L(x + h e_i) - L(x - h e_i)) / (2 h)
// computed with L accumulated in double. Any op or module can be fed as a lambda.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace td {

struct GradcheckOptions {
    float h = 1e-2f;     // step; float32 forward passes want a largish step
    float atol = 1e-3f;  // |analytic - numeric| <= atol + rtol * |numeric|
    float rtol = 1e-2f;
    uint64_t seed = 1234;  // for the weights w
};

struct GradcheckResult {
    bool ok = true;
    double max_abs_error = 0.0;
    std::string message;  // which input, which element, both values, when !ok
};

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks every input that requires grad. Inputs must be float32 CPU tensors.
GradcheckResult gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace td
