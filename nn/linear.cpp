// nn/linear.cpp
#include "nn/linear.h"

#include "tensor/error.h"

namespace td::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator& gen) {
    check(in > 0 && out > 0, "Linear: sizes must be positive, got ", in, " -> ", out);
    weight = register_parameter("weight", uniform_fan_in({out, in}, in, gen));
    if (with_bias) bias = register_parameter("bias", uniform_fan_in({out}, in, gen));
}

Tensor Linear::forward(const Tensor& x) {
    check(x.dim() >= 1 && x.size(-1) == weight.size(1), "Linear: input of shape ", x.shape(),
          " does not end in in_features = ", weight.size(1));
    Tensor y = matmul(x.dim() == 1 ? x.unsqueeze(0) : x, weight.transpose(0, 1));  // (..., in) @ (in, out)
    if (x.dim() == 1) y = y.squeeze(0);
    return bias.defined() ? y + bias : y;
}

}  // namespace td::nn
