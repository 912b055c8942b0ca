// nn/feedforward.cpp
#include "nn/feedforward.h"

#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::nn {

GEGLU::GEGLU(int64_t dim_in, int64_t dim_out, Generator& gen) {
    proj = register_module("proj", std::make_shared<Linear>(dim_in, 2 * dim_out, true, gen));
}

Tensor GEGLU::forward(const Tensor& x) {
    std::vector<Tensor> ag = chunk(proj->forward(x), 2, -1);  // a, g: (..., dim_out) each
    return ag[0] * gelu(ag[1]);                               // the gate decides how much of a passes
}

FeedForward::FeedForward(int64_t dim, int64_t mult, bool glu, Generator& gen) {
    check(dim > 0 && mult > 0, "FeedForward: dim and mult must be positive, got ", dim, ", ", mult);
    int64_t inner = mult * dim;
    net = register_module("net", std::make_shared<Sequential>());
    if (glu) {
        net->push_back(std::make_shared<GEGLU>(dim, inner, gen));  // net.0.proj
    } else {
        auto in = net->push_back(std::make_shared<Sequential>());        // net.0
        in->push_back(std::make_shared<Linear>(dim, inner, true, gen));  // net.0.0
        in->push_back(std::make_shared<GELU>());
    }
    net->push_back(std::make_shared<Identity>());                     // net.1: LDM's Dropout (p = 0)
    net->push_back(std::make_shared<Linear>(inner, dim, true, gen));  // net.2
}

}  // namespace td::nn
