// nn/feedforward.h: the position-wise feed-forward network of a Transformer block, in
// the form of the latent-diffusion code (ldm/modules/attention.py, FeedForward):
//
//     net.0   project in: GEGLU(dim -> inner)        (glu = true, LDM's SpatialTransformer)
//                      or Linear(dim -> inner), GELU  (glu = false, names net.0.0)
//     net.1   LDM's Dropout slot (ours: the identity; kept so the names line up)
//     net.2   Linear(inner -> dim)
//
// inner = mult * dim (4 in the Transformer, Vaswani et al. 2017 sec. 3.3).
#pragma once
#include "nn/layers.h"
#include "nn/linear.h"

namespace td::nn {

// GEGLU (Shazeer 2020, "GLU Variants Improve Transformer", eq. 6 with GELU as the gate):
// [a, g] = x W + b split in two halves along the features, out = a * GELU(g).
// x: (..., dim_in) -> (..., dim_out); proj: Linear(dim_in, 2 dim_out) (LDM's name).
class GEGLU : public UnaryModule {
public:
    GEGLU(int64_t dim_in, int64_t dim_out, Generator& gen = init_generator());
    Tensor forward(const Tensor& x) override;
    std::string name() const override { return "GEGLU"; }
    std::shared_ptr<Linear> proj;
};

class FeedForward : public UnaryModule {
public:
    FeedForward(int64_t dim, int64_t mult = 4, bool glu = true, Generator& gen = init_generator());
    Tensor forward(const Tensor& x) override { return net->forward(x); }  // (..., dim) -> (..., dim)
    std::string name() const override { return "FeedForward"; }
    std::shared_ptr<Sequential> net;
};

}  // namespace td::nn
