// nn/conv.cpp
#include "nn/conv.h"

#include "tensor/error.h"
#include "tensor/nn_ops.h"

namespace td::nn {

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, int64_t stride_, int64_t padding_, int64_t groups_, bool with_bias,
               Generator& gen)
    : stride(stride_), padding(padding_), groups(groups_) {
    check(in > 0 && out > 0 && k > 0 && groups > 0 && in % groups == 0 && out % groups == 0,
          "Conv2d: bad sizes in=", in, " out=", out, " k=", k, " groups=", groups);
    int64_t fan_in = in / groups * k * k;
    weight = register_parameter("weight", uniform_fan_in({out, in / groups, k, k}, fan_in, gen));
    if (with_bias) bias = register_parameter("bias", uniform_fan_in({out}, fan_in, gen));
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, stride, padding, groups); }

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, int64_t k, int64_t stride_, int64_t padding_,
                                 int64_t output_padding_, int64_t groups_, bool with_bias, Generator& gen)
    : stride(stride_), padding(padding_), output_padding(output_padding_), groups(groups_) {
    check(in > 0 && out > 0 && k > 0 && groups > 0 && in % groups == 0 && out % groups == 0,
          "ConvTranspose2d: bad sizes in=", in, " out=", out, " k=", k, " groups=", groups);
    int64_t fan_in = out / groups * k * k;
    weight = register_parameter("weight", uniform_fan_in({in, out / groups, k, k}, fan_in, gen));
    if (with_bias) bias = register_parameter("bias", uniform_fan_in({out}, fan_in, gen));
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
    return conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups);
}

}  // namespace td::nn
