// examples/custom_layer.cpp: a new layer, its backward written by hand, checked against
// finite differences, then trained.
//
// The layer is y = a * tanh(x), with a learnable scale a per feature. Its op computes the
// forward with the engine's ops under NoGradGuard (so they record nothing), then hangs one
// node on y with record(): the closure maps dL/dy to (dL/dx, dL/da). gradcheck compares
// that closure with central differences; a mistake in it fails here, not three layers
// deep in a training run. The same steps, for an op inside the engine: docs/add-an-op.md.
#include <cstdio>

#include "nn/module.h"
#include "nn/optim.h"
#include "td.h"

using namespace td;

// x (N, F), a (F) -> a * tanh(x), (N, F).
Tensor scaled_tanh(const Tensor& x, const Tensor& a) {
    Tensor t, y;
    {
        NoGradGuard no_grad;  // the closure below is this op's whole backward
        t = tanh(x);
        y = t * a;
    }
    return record("scaled_tanh", y, {x, a}, [t, a](const Tensor& dy) -> std::vector<Tensor> {
        Tensor dx = dy * a.detach() * (1.0f - t * t);  // d tanh(x) / dx = 1 - tanh(x)^2
        Tensor da = sum_to(dy * t, a.shape());         // a was broadcast over the batch: sum it back
        return {dx, da};
    });
}

class ScaledTanh : public nn::UnaryModule {
public:
    explicit ScaledTanh(int64_t features) { scale = register_parameter("scale", ones({features})); }
    Tensor forward(const Tensor& x) override { return scaled_tanh(x, scale); }
    std::string name() const override { return "ScaledTanh"; }
    Tensor scale;
};

int main() {
    Generator gen(0);
    Tensor x = randn({5, 3}, gen).requires_grad_();
    Tensor a = randn({3}, gen).requires_grad_();
    GradcheckResult check = gradcheck([](const std::vector<Tensor>& in) { return scaled_tanh(in[0], in[1]); }, {x, a});
    std::printf("gradcheck of scaled_tanh: %s (max error %.2e)\n", check.ok ? "ok" : check.message.c_str(),
                check.max_abs_error);
    if (!check.ok) return 1;

    // Train the layer to fit y = 2 tanh(x): its scale should go to 2.
    ScaledTanh layer(3);
    nn::Adam adam(layer.named_parameters(), {.lr = 0.05f});
    for (int step = 1; step <= 200; ++step) {
        Tensor in = randn({32, 3}, gen);
        Tensor loss = mse_loss(layer(in), 2.0f * tanh(in));
        layer.zero_grad();
        loss.backward();
        adam.step();
        if (step % 50 == 0) std::printf("step %3d  loss %.5f\n", step, loss.item());
    }
    std::printf("learnt scale:");
    for (float v : layer.scale.to_vector()) std::printf(" %.3f", v);
    std::printf("  (the target: 2)\n");
    return 0;
}
