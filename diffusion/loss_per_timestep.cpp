// diffusion/loss_per_timestep.cpp: see loss_per_timestep.h.
#include "diffusion/loss_per_timestep.h"

#include "autograd/node.h"
#include "diffusion/forward_process.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace td::diffusion {

namespace {
double mse(const Tensor& a, const Tensor& b) {
    Tensor d = a - b;
    return mean(d * d).item();
}
}  // namespace

std::vector<LossAtT> loss_per_timestep(const LoadedModel& model, const Tensor& x0, const std::vector<int64_t>& ts,
                                       uint64_t seed, const Tensor& y) {
    if (x0.dim() != 4) fail("loss_per_timestep: x0 must be (B, C, H, W), got ", shape_str(x0.shape()));
    const int64_t B = x0.size(0);
    NoGradGuard no_grad;
    Generator gen(seed);
    const Device device = model.device();
    Tensor x0_d = x0.to(device);
    Tensor eps = randn(x0.shape(), gen).to(device);
    UNet::Cond cond = y.defined() ? model.unet->condition(y.to(device)) : UNet::Cond{};

    std::vector<LossAtT> curve;
    for (int64_t t_value : ts) {
        if (t_value < 0 || t_value >= model.info.T)
            fail("loss_per_timestep: t = ", t_value, " is outside 0..", model.info.T - 1);
        Tensor t = Tensor::from_vector_i64(std::vector<int64_t>(B, t_value), {B}).to(device);
        Tensor x_t = q_sample(model.schedule, x0_d, t, eps);  // eq. 4
        Tensor out = model.unet->forward(x_t, t, cond);       // the network's output
        const Prediction p = model.info.prediction;
        curve.push_back({t_value, mse(out, training_target(p, model.schedule, x0_d, t, eps)),  // eq. 14 at this t
                         mse(model_eps(p, model.schedule, x_t, t, out), eps),
                         mse(model_x0(p, model.schedule, x_t, t, out), x0_d)});
    }
    return curve;
}

std::vector<int64_t> evenly_spaced_timesteps(int64_t T, int64_t n) {
    if (n < 2 || T < 2) fail("evenly_spaced_timesteps: need n >= 2 and T >= 2, got n = ", n, ", T = ", T);
    std::vector<int64_t> ts;
    for (int64_t i = 0; i < n; ++i) {
        int64_t t = (i * (T - 1) + (n - 1) / 2) / (n - 1);  // rounded to the nearest step
        if (ts.empty() || t != ts.back()) ts.push_back(t);
    }
    return ts;
}

}  // namespace td::diffusion
