// nn/ema.h: an exponential moving average of a model's weights, the weights diffusion
// models are sampled with (DDPM used decay 0.9999).
//
// After each optimizer step, update(model) moves a shadow copy of every parameter
// towards the live one:
//   shadow_t = decay_t * shadow_{t-1} + (1 - decay_t) * theta_t,
//   decay_t  = min(decay, (1 + t) / (10 + t)),   t = 1, 2, ... the number of this update
// (the warm-up of CompVis' LitEma and of the TensorFlow EMA with num_updates).
#pragma once
#include <map>
#include <string>

#include "nn/module.h"

namespace td::nn {

// Why the warm-up: the shadow starts as the random initial weights, and after n updates
// those still carry the weight prod_t decay_t. With a fixed decay of 0.9999 that is
// 0.9999^n: 0.99 after 100 steps, 0.90 after 1000, so a short run's EMA model is still
// mostly noise and samples from it are noise (a classic trap of short runs). With the warm-up the
// product is 10! (n+1)! / (n+10)!: 6e-5 after 10 updates, 2e-12 after 100. The warm-up
// stops mattering once (1 + t) / (10 + t) > decay, after about 90,000 updates for 0.9999.
//
// Buffers (non-trained tensors such as running statistics) are not averaged: the shadow
// takes the live value at each update, so copy_to() gives a consistent model.
//
// State: state_dict() uses the model's own names (parameters and buffers, no prefix),
// so it *is* a model state dict: save() writes it as a .safetensors file that loads
// straight into a model with load_module() for sampling, with the update count and
// decay in the file's metadata ("ema_num_updates", "ema_decay") so load() can resume.
class EMA {
public:
    // The shadow starts as a copy of the model's current weights, on the model's device.
    explicit EMA(const Module& model, float decay = 0.9999f, bool warmup = true);

    void update(const Module& model);   // one step of the average (after opt.step())
    void copy_to(Module& model) const;  // the averaged weights into a model (for sampling)

    // decay_t for the t-th update (t >= 1): min(decay, (1 + t) / (10 + t)), or decay without warm-up.
    float decay_at(int64_t t) const;
    float decay() const { return decay_; }
    int64_t num_updates() const { return num_updates_; }

    std::map<std::string, Tensor> state_dict() const;  // copies on the CPU, under the model's names
    // Restores a state_dict() and the update count it was saved at. The names must match
    // the model the EMA was built from, both ways; errors list every mismatch.
    void load_state_dict(const std::map<std::string, Tensor>& state, int64_t num_updates);

    void save(const std::string& path) const;  // .safetensors, see above
    void load(const std::string& path);

private:
    float decay_;
    bool warmup_;
    int64_t num_updates_ = 0;
    NamedTensors shadow_params_, shadow_buffers_;  // own memory, never requires grad
    void check_same_model(const NamedTensors& mine, const NamedTensors& theirs, const char* what) const;
};

}  // namespace td::nn
