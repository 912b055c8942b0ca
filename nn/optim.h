// nn/optim.h: optimizers that update parameters in place from their .grad, with the
// same formulas, arranged the same way (bias corrections included), as torch.optim, so
// a run here and a run in PyTorch from the same weights and gradients agree to float
// rounding (tests/test_optim.cpp checks 3 steps of each against torch).
//
//   SGD    (momentum in PyTorch's form b = mu b + g, Nesterov optional (Sutskever et al. 2013), L2 weight decay)
//   Adam   (Kingma & Ba 2015, Algorithm 1, L2 weight decay added to the gradient)
//   AdamW  (Loshchilov & Hutter 2019, Algorithm 2: weight decay decoupled from the gradient)
//
// Usage:
//   nn::AdamW opt(model.named_parameters(), {.lr = 2e-4f});
//   for (...) { opt.zero_grad(); loss(model).backward(); nn::clip_grad_norm(model.parameters(), 1.0f); opt.step(); }
#pragma once
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"
#include "tensor/tensor.h"

namespace td::nn {

// A parameter whose .grad is undefined at step() is skipped: its state, step count
// included, does not advance (as in PyTorch).
//
// State for checkpoints: state_dict() is a flat map of named tensors, PyTorch's
// per-parameter optimizer state with the parameter's name in the key:
//   "state.<param name>.step"         0-d int64, steps this parameter has taken
//   "state.<param name>.exp_avg"      Adam / AdamW: m, first moment
//   "state.<param name>.exp_avg_sq"   Adam / AdamW: v, second moment
//   "state.<param name>.momentum_buffer"   SGD with momentum
// so it saves straight into a .safetensors file (the copies are in host memory wherever
// the parameters live; the live state sits beside each parameter, on its device).
// Hyperparameters (lr, betas, ...) are not state: they come from the constructor (and
// set_lr, for a schedule).
class Optimizer {
public:
    // Parameters by name (Module::named_parameters()), or unnamed: then they are named
    // "0", "1", ... in order, like the indices of PyTorch's optimizer state.
    Optimizer(NamedTensors params, float lr);
    Optimizer(const std::vector<Tensor>& params, float lr);
    virtual ~Optimizer() = default;

    virtual void step() = 0;  // one update of every parameter that has a .grad
    virtual std::string name() const = 0;
    void zero_grad();  // drops every parameter's .grad (PyTorch's set_to_none)

    float lr() const { return lr_; }
    void set_lr(float lr) {
        lr_ = lr;
    }  // e.g. from nn/lr_schedule.h before each step (options().lr stays the initial lr)
    const NamedTensors& params() const { return params_; }

    std::map<std::string, Tensor> state_dict() const;  // copies on the CPU, see above
    // Restores state saved by state_dict() of the same optimizer over the same parameters;
    // each buffer goes to its parameter's device.
    // Throws td::Error listing unexpected names, mis-shaped tensors and parameters with
    // only part of their state; nothing is changed then.
    void load_state_dict(const std::map<std::string, Tensor>& state);

protected:
    // The state of one parameter. Created at its first step (PyTorch does the same).
    struct ParamState {
        int64_t step = 0;                       // t: updates this parameter has received
        std::map<std::string, Tensor> buffers;  // "exp_avg", "exp_avg_sq", "momentum_buffer"
    };
    // The buffers a parameter's state holds once it has stepped (for load_state_dict's checks).
    virtual std::vector<std::string> buffer_names() const = 0;

    NamedTensors params_;
    std::vector<ParamState> state_;  // one per parameter, same order
    float lr_;
};

struct SGDOptions {
    float lr = 1e-2f;
    float momentum = 0.0f;
    float dampening = 0.0f;
    float weight_decay = 0.0f;  // L2: added to the gradient, g += weight_decay * theta
    bool nesterov = false;      // needs momentum > 0 and dampening = 0 (as in PyTorch)
};

class SGD : public Optimizer {
public:
    SGD(NamedTensors params, SGDOptions options = {});
    SGD(const std::vector<Tensor>& params, SGDOptions options = {});
    void step() override;
    std::string name() const override { return "SGD"; }
    const SGDOptions& options() const { return opt_; }

protected:
    std::vector<std::string> buffer_names() const override;

private:
    SGDOptions opt_;
};

struct AdamOptions {
    float lr = 1e-3f;
    float beta1 = 0.9f, beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.0f;  // L2: added to the gradient, g += weight_decay * theta
};

class Adam : public Optimizer {
public:
    Adam(NamedTensors params, AdamOptions options = {});
    Adam(const std::vector<Tensor>& params, AdamOptions options = {});
    void step() override;
    std::string name() const override { return decoupled_weight_decay_ ? "AdamW" : "Adam"; }
    const AdamOptions& options() const { return opt_; }

protected:
    Adam(NamedTensors params, AdamOptions options, bool decoupled_weight_decay);  // for AdamW
    std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq"}; }

private:
    AdamOptions opt_;
    bool decoupled_weight_decay_;
};

// AdamW's own options, so that {.lr = 2e-4f} keeps PyTorch's default weight decay 1e-2.
struct AdamWOptions {
    float lr = 1e-3f;
    float beta1 = 0.9f, beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 1e-2f;  // decoupled: theta *= 1 - lr * weight_decay, apart from the gradient
};

class AdamW : public Adam {
public:
    AdamW(NamedTensors params, AdamWOptions options = {});
    AdamW(const std::vector<Tensor>& params, AdamWOptions options = {});
};

// Rescales the gradients of `params` in place so that their global L2 norm is at most
// max_norm, and returns the norm they had before (PyTorch's clip_grad_norm_):
//   total = sqrt(sum_p ||g_p||^2),  coef = max_norm / (total + 1e-6),
//   and if coef < 1, every g_p *= coef.
// Parameters without a .grad are ignored. A non-finite total (inf / NaN gradients) is
// returned as it is and, as in PyTorch, the gradients are scaled by the non-finite
// coefficient: check the returned norm and skip the step.
float clip_grad_norm(const std::vector<Tensor>& params, float max_norm);

}  // namespace td::nn
